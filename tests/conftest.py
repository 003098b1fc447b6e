"""Test-wide set-up: offline, no analytics, and a throw-away MENTORLY_HOME per session so a
developer's own data and config are never touched."""

from __future__ import annotations

import os
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

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME
