"""Test-wide set-up: offline, no analytics, and a throw-away MENTORLY_HOME per session so a
developer's own data and config are never touched."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

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
