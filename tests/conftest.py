"""Test-wide set-up: offline, no analytics, and a throw-away MENTORLY_HOME per session so a
developer's own data and config are never touched."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.pop("MENTORLY_CONFIG", None)
for _key in [k for k in os.environ if k.startswith("MENTORLY_")]:
    os.environ.pop(_key)
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
