"""Security settings of the API (issue #13, item 11): a revoked key fails on its very next
request whichever process revoked it, and ``/metrics`` is served only as ``api.metrics`` says."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.api.metrics import is_loopback
from assistant.config import load_settings
from assistant.errors import Unauthorized
from assistant.security import KeyStore
from assistant.security.revocation import RevocationCheck
from assistant.storage import Database
from mentorly_app.web import create_app
from tests.conftest import REPO_ROOT
from tests.support.live_api import assert_error, make_runtime, serve

REMOTE = ("203.0.113.7", 50000)  # TEST-NET-3: a client on another machine
LOCAL_V4 = ("127.0.0.1", 50000)
LOCAL_V6 = ("::1", 50000)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- revocation -----------------------------------------------------------------------------


def test_a_key_revoked_through_the_servers_store_fails_on_its_next_request(tmp_path: Path) -> None:
    app = create_app(make_runtime(tmp_path), with_ui=False)
    app.state.keys.cache_ttl_s = 3600  # the cached entry outlives the test: only revocation ends it
    key, info = app.state.keys.create("acme", "chat")
    with TestClient(app, client=LOCAL_V4) as client:
        for _ in range(2):  # the second is answered from the cache
            assert client.get("/v1/models", headers=bearer(key)).status_code == 200
        app.state.keys.revoke(info.prefix)
        assert_error(client.get("/v1/models", headers=bearer(key)), 401, "unauthorized", "revoked")  # type: ignore[arg-type]


def test_a_key_revoked_by_the_cli_in_another_process_fails_on_its_next_request(tmp_path: Path) -> None:
    server, app = serve(make_runtime(tmp_path))
    try:
        app.state.keys.cache_ttl_s = 3600
        key, info = app.state.keys.create("acme", "tools")
        other, _ = app.state.keys.create("acme", "tools")
        for k in (key, key, other):
            assert httpx.get(server.url + "/api/tools", headers=bearer(k)).status_code == 200
        assert app.state.keys.cached(key) is not None
        env = {**os.environ, "MENTORLY_HOME": str(tmp_path)}  # the server's database
        done = subprocess.run([sys.executable, "-m", "mentorly_app", "keys", "revoke", info.prefix], env=env,
                              capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        assert done.returncode == 0 and "Revoked" in done.stdout, done.stdout + done.stderr
        assert_error(httpx.get(server.url + "/api/tools", headers=bearer(key)), 401, "unauthorized", "revoked")
        assert httpx.get(server.url + "/api/tools", headers=bearer(other)).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize("inline", [True, False], ids=["sqlite-own-connection", "engine-pool"])
def test_a_cached_key_is_rechecked_against_the_database(tmp_path: Path, inline: bool,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    store = KeyStore(Database(url))
    store._revocation.inline = inline  # False: the path PostgreSQL takes (in a worker thread)
    assert store.cache_is_cheap is inline
    key, info = store.create("acme", "chat")
    assert store.lookup(key) == store.cached(key) is not None
    def busy(self: RevocationCheck, row_id: str) -> bool:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as m:  # the check cannot say: the full lookup decides
        m.setattr(RevocationCheck, "active", busy)
        assert store.cached(key) is None and store.lookup(key).tenant == "acme"
    KeyStore(Database(url)).revoke(info.id)  # another process's store: this cache is not told
    assert store.cached(key) is None
    with pytest.raises(Unauthorized, match="revoked"):
        store.lookup(key)


# -- /metrics ---------------------------------------------------------------------------------


def metrics_app(home: Path, mode: str | None) -> Any:
    runtime = make_runtime(home, api={"metrics": mode}) if mode else make_runtime(home)
    return create_app(runtime, with_ui=False)


def scrape(app: Any, client: tuple[str, int], key: str | None = None) -> httpx.Response:
    """GET /metrics as a client at ``client`` (no lifespan: the app is scraped several times)."""
    return TestClient(app, client=client).get("/metrics", headers=bearer(key) if key else {})  # type: ignore[return-value]


def test_metrics_default_to_loopback_clients_only(tmp_path: Path) -> None:
    app = metrics_app(tmp_path, None)
    assert app.state.runtime.settings.api.metrics == "loopback"
    for client in (LOCAL_V4, LOCAL_V6):
        r = scrape(app, client)
        assert r.status_code == 200 and "mentorly_http_requests_total" in r.text
    admin, _ = app.state.keys.create("acme", "admin")
    for client in (REMOTE, ("testclient", 50000)):  # a key does not open it to other machines
        assert_error(scrape(app, client, admin), 403, "forbidden", "only clients on this machine")


def test_metrics_public_serves_anyone(tmp_path: Path) -> None:
    assert scrape(metrics_app(tmp_path, "public"), REMOTE).status_code == 200


def test_metrics_key_needs_an_admin_key_from_anywhere(tmp_path: Path) -> None:
    app = metrics_app(tmp_path, "key")
    admin, _ = app.state.keys.create("acme", "admin")
    chat, _ = app.state.keys.create("acme", "chat,tools,knowledge")
    for client in (REMOTE, LOCAL_V4):
        assert_error(scrape(app, client), 401, "unauthorized")
        assert_error(scrape(app, client, chat), 403, "forbidden", "'admin' scope")
        assert scrape(app, client, admin).status_code == 200


def test_metrics_off_is_not_found(tmp_path: Path) -> None:
    app = metrics_app(tmp_path, "off")
    admin, _ = app.state.keys.create("acme", "admin")
    for client in (REMOTE, LOCAL_V4):
        assert_error(scrape(app, client, admin), 404, "not_found", "turned off")


def test_metrics_setting_is_checked_and_the_old_flag_keeps_its_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import ConfigError

    with pytest.raises(ConfigError):
        load_settings(api={"metrics": "everyone"})
    assert load_settings(api={"metrics_public": False}).api.metrics == "key"
    monkeypatch.setenv("MENTORLY_API__METRICS_PUBLIC", "true")
    assert load_settings().api.metrics == "public"
    monkeypatch.setenv("MENTORLY_API__METRICS", "off")
    assert load_settings().api.metrics == "off"  # the new setting wins


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("2001:db8::1", False), ("localhost", False),
    ("testclient", False), ("", False), (None, False)])
def test_loopback_addresses(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback
