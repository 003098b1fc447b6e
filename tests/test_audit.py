"""The audit log: key creation and revocation from the CLI, widget keys, administrative API
operations (by operation id, after success only), ``mentorly audit`` and ``GET /api/audit``;
plus ``mentorly usage``. Every test runs on SQLite and on PostgreSQL (``db_url``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
from click.testing import CliRunner
from fastapi import APIRouter, Depends

from assistant import audit
from assistant.api import require
from assistant.errors import InvalidInput
from assistant.metering import Meter
from assistant.security import ADMIN, Principal
from assistant.storage import shared_database
from mentorly_app.cli import cli
from mentorly_app.web import create_app
from tests.support.live_api import LiveServer, assert_error, make_runtime


class Ran:
    def __init__(self, result: Any) -> None:
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr


def mentorly(home: Path, database_url: str, *args: str) -> Ran:
    """The real CLI group, in process (a subprocess per command would cost seconds each)."""
    env = {"MENTORLY_HOME": str(home), "MENTORLY_DATABASE_URL": database_url}
    return Ran(CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False))


def test_cli_key_lifecycle_is_audited_and_usage_is_reported(tmp_path: Path, db_url: str) -> None:
    def run(*args: str) -> Ran:
        return mentorly(tmp_path, db_url, *args)

    created = run("keys", "create", "--tenant", "acme", "--scopes", "admin", "--json")
    assert created.returncode == 0, created.stderr
    prefix = json.loads(created.stdout)["prefix"]
    widget = run("keys", "create", "--widget", "--tenant", "acme", "--origins", "https://school.example",
                 "--json")
    assert widget.returncode == 0, widget.stderr
    pk = json.loads(widget.stdout)["key"]
    assert json.loads(widget.stdout)["secret"].startswith("wsk_")
    refused = run("keys", "create", "--widget", "--tenant", "acme")
    assert refused.returncode != 0 and "--origins" in refused.stderr
    assert run("keys", "revoke", prefix).returncode == 0
    assert run("keys", "revoke", pk).returncode == 0
    db = shared_database(db_url)
    Meter(db).record(tenant="acme", user="ann", tool="halve", tool_calls=1, prompt_tokens=7)
    log = run("audit", "--json")
    assert log.returncode == 0, log.stderr
    entries = json.loads(log.stdout)
    assert [(e["action"], e["target"]) for e in entries] == [
        (audit.WIDGET_KEY_REVOKED, pk), (audit.KEY_REVOKED, prefix),
        (audit.WIDGET_KEY_CREATED, pk), (audit.KEY_CREATED, prefix)]
    assert all(e["actor"].startswith("cli:") and e["tenant"] == "acme" for e in entries)
    assert entries[-1]["details"] == {"scopes": ["admin"]}
    usage = run("usage", "--group-by", "tool", "--csv")
    assert usage.returncode == 0 and usage.stdout.splitlines()[1].startswith("halve,0,7,0,1,")
    bad = run("usage", "--from", "last week")
    assert bad.returncode != 0 and "ISO" in bad.stderr


def test_admin_api_operations_are_audited_after_success_only(tmp_path: Path, db_url: str) -> None:
    runtime = make_runtime(tmp_path, database_url=db_url)
    app = create_app(runtime, with_ui=False)
    stand_in = APIRouter()  # the catalog plugin's operation id, on a minimal route

    @stand_in.post("/api/catalog", operation_id="import_catalog")
    async def import_catalog(principal: Annotated[Principal, Depends(require(ADMIN))],
                             fail: bool = False) -> dict[str, Any]:
        if fail:
            raise InvalidInput("row 3 is malformed")
        return {"tenant": principal.tenant}

    app.include_router(stand_in)
    server = LiveServer(app).start()
    try:
        admin, info = app.state.keys.create("acme", "admin")
        chat, _ = app.state.keys.create("acme", "chat")
        other, _ = app.state.keys.create("beta", "admin")
        h = {"Authorization": f"Bearer {admin}"}
        assert httpx.post(server.url + "/api/catalog", headers=h).status_code == 200
        assert httpx.post(server.url + "/api/catalog?fail=true", headers=h).status_code == 422
        assert httpx.post(server.url + "/api/catalog", headers={"Authorization": f"Bearer {chat}"}).status_code == 403
        found = audit.entries(runtime.db, action=audit.CATALOG_IMPORTED)
        assert [(e.actor, e.tenant, e.target) for e in found] == [(f"key:{info.prefix}", "acme", "/api/catalog")]
        listed = httpx.get(server.url + "/api/audit", headers=h).json()["entries"]
        assert [e["action"] for e in listed] == [audit.CATALOG_IMPORTED]
        assert httpx.get(server.url + "/api/audit", headers=h,
                         params={"action": audit.CATALOG_IMPORTED}).json()["entries"] == listed
        # a NUL is refused before the query (PostgreSQL would fail on it: a 500)
        assert_error(httpx.get(server.url + "/api/audit", headers=h, params={"action": "catalog\x00imported"}),
                     422, "invalid_input", "action")
        assert httpx.get(server.url + "/api/audit", headers={"Authorization": f"Bearer {other}"}).json() == \
            {"entries": []}
        assert httpx.get(server.url + "/api/audit", headers={"Authorization": f"Bearer {chat}"}).status_code == 403
    finally:
        server.stop()


def test_a_start_with_changed_settings_is_audited(tmp_path: Path, db_url: str) -> None:
    from assistant.config import load_settings

    db = shared_database(db_url)
    first = load_settings(home=tmp_path, plugins=[])
    assert audit.record_settings_change(db, first) == ["(first start)"]
    assert audit.record_settings_change(db, first) == []  # unchanged: nothing written
    changed = load_settings(home=tmp_path, plugins=[], quotas={"tokens_per_day_per_user": 5000},
                            llm={"api_key": "sk-secret-value"})
    assert audit.record_settings_change(db, changed) == ["llm.api_key", "quotas.tokens_per_day_per_user"]
    found = audit.entries(db, action=audit.SETTINGS_CHANGED)
    assert len(found) == 2 and found[0].target == "llm.api_key, quotas.tokens_per_day_per_user"
    assert "sk-secret-value" not in str(found[0].details)  # secrets stay masked
