"""Test-wide set-up: offline, no analytics, and a throw-away MENTORLY_HOME per session so a
developer's own data and config are never touched."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.pop("MENTORLY_CONFIG", None)
for _key in [k for k in os.environ if k.startswith("MENTORLY_") and k != "MENTORLY_TEST_DATABASE"]:
    os.environ.pop(_key)  # MENTORLY_TEST_DATABASE picks the suite's database (see the end)
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mentorly-test-home-"))
os.environ["MENTORLY_HOME"] = str(_SESSION_HOME)
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)  # the assembled GGUF is 491 MB

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def local_model_path() -> Path:
    """The packaged GGUF, assembled once per session (subprocesses reuse it via MODEL_PATH)."""
    from assistant.config import load_settings
    from assistant.llm.model_files import prepare_model

    return prepare_model(load_settings(), progress=False)


# -- databases: every storage-facing test runs on SQLite and on PostgreSQL ----------------------

_PG: Any = None


def _postgres() -> Any:
    """The session's throw-away PostgreSQL server (started on first use, stopped at exit)."""
    global _PG
    if _PG is None:
        from tests.support.postgres import PostgresServer

        bindir = PostgresServer.find_bin()
        if bindir is None:
            pytest.skip("PostgreSQL server binaries not installed (make test installs Debian's "
                        "postgresql package)")
        _PG = PostgresServer(bindir).start()
        atexit.register(_PG.close)
    return _PG


@pytest.fixture(scope="session")
def pg_server() -> Any:
    """A running ``tests.support.postgres.PostgresServer`` shared by the session."""
    return _postgres()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The SQLAlchemy URL of a new, empty PostgreSQL database for this test."""
    return str(pg_server.create_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database for this test: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mentorly.db'}"
    return str(_postgres().create_database())


def new_database_url(backend: str, folder: Path) -> str:
    """A new, empty database on ``backend`` ("sqlite": a file in ``folder``; "postgresql": a
    database on the session's server)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'mentorly.db'}"
    return str(_postgres().create_database())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_backend(request: pytest.FixtureRequest) -> str:
    """For module-scoped servers: the module's tests run once per backend (grouped by it)."""
    return str(request.param)


@pytest.fixture(scope="module")
def module_db_url(module_db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``db_url`` for module-scoped servers: a new database per module and backend; pass it as
    ``database_url`` to the server's settings. A second server in the module gets its own with
    ``new_database_url(module_db_backend, ...)``. A PostgreSQL one is dropped after the module
    (its servers have stopped by then), which also closes the connections their pools kept."""
    url = new_database_url(module_db_backend, tmp_path_factory.mktemp("db"))
    yield url
    if module_db_backend == "postgresql":
        _drop_database(_postgres(), url.rsplit("/", 1)[1])


# -- the whole suite on PostgreSQL: MENTORLY_TEST_DATABASE=postgresql (make test-postgresql) ----
#
# Settings read MENTORLY_DATABASE_URL whenever they are loaded, and fixtures load them when they
# are set up: a module-scoped server reads it once, before the first test that uses it. In this
# mode the variable is set at two levels, mirroring what SQLite gives the same tests (a module
# fixture's server and its tests share the file under the module's home; a test that builds its
# own runtime over tmp_path gets a new, empty file):
# - module: ``_suite_database_for_module``, autouse and module-scoped, so pytest sets it up
#   before every other module-scoped fixture of the module (autouse first within a scope, wider
#   scopes before narrower ones). Module-scoped fixtures, and the tests that use them (and may
#   run ``mentorly`` commands against the server's database), see the module's database.
# - function: ``_suite_database_for_test`` gives every other test a new, empty database of its
#   own. "Other" = the test uses no module-, class- or package-scoped fixture beyond this
#   file's autouse one (read from the test's static fixture closure).
# Session-scoped fixtures are set up before both and keep the SQLite default (none of them opens
# the database). A test that names its own database (``db_url``, ``module_db_url``, an explicit
# ``sqlite:///`` URL, its own MENTORLY_DATABASE_URL) keeps it. Each database is dropped when its
# scope ends (WITH (FORCE): connections still pooled by leftover engines are closed), so the
# server holds neither a connection nor a data folder per test for the whole run.
# In the default mode (unset or "sqlite") both fixtures do nothing.

SUITE_DATABASE = (os.environ.get("MENTORLY_TEST_DATABASE") or "sqlite").strip().lower()
if SUITE_DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"MENTORLY_TEST_DATABASE={SUITE_DATABASE!r}: use 'postgresql' or 'sqlite'")
_WIDER_SCOPES = {"module", "class", "package"}


def _suite_postgres() -> Any:
    """The session's server; in this mode a missing server fails the run (it is the point)."""
    from tests.support.postgres import PostgresServer

    if _PG is None and PostgresServer.find_bin() is None:
        pytest.fail("MENTORLY_TEST_DATABASE=postgresql needs the PostgreSQL server binaries "
                    "(make services, or apt-get install postgresql)", pytrace=False)
    return _postgres()


@contextmanager
def _suite_database(prefix: str) -> Iterator[None]:
    """MENTORLY_DATABASE_URL = a new PostgreSQL database while the block runs; then it is dropped."""
    server = _suite_postgres()
    url = str(server.create_database(prefix))
    saved = os.environ.get("MENTORLY_DATABASE_URL")
    os.environ["MENTORLY_DATABASE_URL"] = url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MENTORLY_DATABASE_URL", None)
        else:
            os.environ["MENTORLY_DATABASE_URL"] = saved
        _drop_database(server, url.rsplit("/", 1)[1])


def _drop_database(server: Any, name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(server.dsn("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # clean-up only: a server a test stopped, for one, keeps the database


def _shares_module_state(request: pytest.FixtureRequest) -> bool:
    info = getattr(request.node, "_fixtureinfo", None)
    if info is None:  # not a plain test function: keep the module's database
        return True
    return any(defs and defs[-1].scope in _WIDER_SCOPES
               for name, defs in info.name2fixturedefs.items() if name != "_suite_database_for_module")


@pytest.fixture(scope="module", autouse=True)
def _suite_database_for_module() -> Iterator[None]:
    if SUITE_DATABASE != "postgresql":
        yield
        return
    with _suite_database("m"):
        yield


@pytest.fixture(autouse=True)
def _suite_database_for_test(request: pytest.FixtureRequest) -> Iterator[None]:
    if SUITE_DATABASE != "postgresql" or _shares_module_state(request):
        yield
        return
    with _suite_database("f"):
        yield
