"""``mentorly serve`` as a real process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("serve-home")
    port = _free_port()
    env = {**os.environ, "MENTORLY_HOME": str(home), "MENTORLY_LLM__BACKEND": "fake",
           "MENTORLY_PLUGINS": "[]", "PYTHONPATH": str(REPO_ROOT),
           "MENTORLY_SERVER__CORS_ORIGINS": '["https://school.example"]'}
    proc = subprocess.Popen([sys.executable, "-m", "mentorly_app", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not start within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_health_and_tool_listing(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok", "tools": []}
    r = httpx.get(f"{server}/api/tools")  # the API needs a key (see tests/test_api.py)
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"


def test_root_redirects_to_the_chat_page(server: str) -> None:
    r = httpx.get(f"{server}/", follow_redirects=True)
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert str(r.url).rstrip("/").endswith("/ui")


def test_cors_allows_only_the_configured_origins(server: str) -> None:
    ok = httpx.get(f"{server}/healthz", headers={"Origin": "https://school.example"})
    assert ok.headers.get("access-control-allow-origin") == "https://school.example"
    bad = httpx.get(f"{server}/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers


def test_unknown_route_is_a_404(server: str) -> None:
    assert httpx.get(f"{server}/api/nothing-here").status_code == 404
