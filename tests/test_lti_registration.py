"""LTI registration (#17): platforms (validation, lookups, removal), the tool's signing keys
(first use from two processes at once, rotation and its grace, the passphrase), ``mentorly lti``
and the admin API with ``/lti/jwks``. What stores rows runs on SQLite and on PostgreSQL
(``db_url``); the rest on a SQLite file."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from assistant import audit
from assistant.api.lti_admin import tool_keys
from assistant.config import LtiSettings, load_settings
from assistant.errors import ConfigError, Conflict, InvalidInput, NotFound
from assistant.lti.courses import courses, ensure_course
from assistant.lti.keys import FIRST_KID, ToolKeys
from assistant.lti.platforms import Platforms
from assistant.lti.sessions import LtiSessions
from assistant.lti.urls import tool_urls
from assistant.storage import Database
from assistant.storage.lti import LtiKey, LtiState
from mentorly_app.cli import cli
from mentorly_app.web import create_app
from tests.support.live_api import assert_error, make_runtime

MOODLE = {
    "issuer": "https://moodle.school.example",
    "client_id": "abc123",
    "auth_login_url": "https://moodle.school.example/mod/lti/auth.php",
    "auth_token_url": "https://moodle.school.example/mod/lti/token.php",
    "key_set_url": "https://moodle.school.example/mod/lti/certs.php",
    "deployment_ids": ["1"],
}


def _add(platforms: Platforms, tenant: str = "acme", **changes: Any) -> Any:
    return platforms.add(tenant=tenant, **{**MOODLE, **changes})


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'mentorly.db'}")


# -- addresses and validation (no rows that differ by database) ---------------------------------

def test_tool_urls_follow_the_public_url_or_the_listening_address(tmp_path: Path) -> None:
    plain = tool_urls(load_settings(home=tmp_path, plugins=[], server={"host": "127.0.0.1", "port": 8000}))
    assert (plain.base, plain.login, plain.launch, plain.jwks, plain.deep_link) == (
        "http://127.0.0.1:8000", "http://127.0.0.1:8000/lti/login", "http://127.0.0.1:8000/lti/launch",
        "http://127.0.0.1:8000/lti/jwks", "http://127.0.0.1:8000/lti/launch")
    assert not plain.public
    public = tool_urls(load_settings(home=tmp_path, plugins=[],
                                     lti={"public_url": "https://mentorly.school.example/"}))
    assert public.launch == "https://mentorly.school.example/lti/launch" and public.public


def test_registrations_are_validated_with_clear_messages(sqlite_db: Database) -> None:
    platforms = Platforms(sqlite_db)
    for changes, message in [
        ({"auth_login_url": "http://moodle.school.example/mod/lti/auth.php"}, "must use https"),
        ({"key_set_url": "ftp://moodle.school.example/certs"}, "not an https URL"),
        ({"key_set_url": "moodle.school.example/certs"}, "not an https URL"),
        ({"auth_login_url": "https://moodle.school.example:99999/auth"}, "not a valid URL"),
        ({"auth_login_url": "https://user:pw@moodle.school.example/auth"}, "password"),
        ({"auth_token_url": "https://moodle.school.example/token#x"}, "fragment"),
        ({"issuer": ""}, "issuer"),
        ({"issuer": "https://moodle.school.example/?x=1"}, "query"),
        ({"issuer": "https://m.example/" + "x" * 500}, "longer than 500"),
        ({"client_id": " "}, "client id"),
        ({"client_id": "x" * 256}, "longer than 255"),
        ({"deployment_ids": []}, "at least one deployment id"),
        ({"deployment_ids": ["1\x002"]}, "control characters"),
        ({"shared_collections": ["a b"]}, "invalid collection name"),
        ({"tenant": "no spaces"}, "invalid tenant"),
    ]:
        tenant = changes.pop("tenant", "acme")
        with pytest.raises(InvalidInput, match=message):
            _add(platforms, tenant, **changes)
    assert platforms.list() == []
    local = _add(platforms, issuer="http://127.0.0.1:8123", auth_login_url="http://localhost:8123/auth",
                 key_set_url="http://[::1]:8123/jwks", auth_token_url="",
                 deployment_ids=[" d1 ", "d2", "d1"], shared_collections=["handbook", "handbook"])
    assert local.deployment_ids == ("d1", "d2") and local.shared_collections == ("handbook",)
    assert local.name == "127.0.0.1" and local.origins == ("http://127.0.0.1:8123", "http://localhost:8123")
    moodle = _add(platforms, issuer="https://Moodle.School.example:443", name="Moodle\x00 prod")
    assert moodle.origins == ("https://moodle.school.example",) and moodle.name == "Moodle prod"


# -- platforms on both databases ----------------------------------------------------------------

def test_platforms_are_found_listed_and_removed(db_url: str) -> None:
    db = Database(db_url)
    platforms = Platforms(db)
    moodle = _add(platforms)
    assert platforms.get(moodle.id) == moodle and platforms.list("acme") == [moodle]
    assert platforms.find(MOODLE["issuer"], "abc123") == moodle
    assert platforms.find(MOODLE["issuer"], None) == moodle  # the issuer's only registration
    assert platforms.find(MOODLE["issuer"], "other") is None and platforms.find("https://x.example", None) is None
    assert platforms.find("https://x\x00.example", "a\x00b") is None  # a NUL: no query PostgreSQL refuses
    with pytest.raises(Conflict, match="already registered"):
        _add(platforms, "beta")  # (issuer, client id) is unique across tenants
    second = _add(platforms, "beta", client_id="xyz")
    assert platforms.find(MOODLE["issuer"], None) is None  # two registrations: the client id must say
    assert platforms.list("beta") == [second] and len(platforms.list()) == 2
    assert platforms.add_deployment(moodle.id, "7").deployment_ids == ("1", "7")
    assert platforms.add_deployment(moodle.id, "7").deployment_ids == ("1", "7")  # twice: harmless
    for bad in ("nope", "f" * 32, "x\x00y", "f" * 1000):
        with pytest.raises(NotFound, match="no LTI platform"):
            platforms.get(bad)
    # a removal takes its pending logins and open sessions; the course and its collection stay
    with db.session() as s:
        s.add(LtiState(state="s" * 40, nonce="n" * 40, platform_id=moodle.id,
                       expires_at=datetime.now(UTC) + timedelta(minutes=5)))
    course = ensure_course(db, tenant="acme", platform_id=moodle.id, context_id="c-1", title="Algebra")
    sessions = LtiSessions(db)
    token = sessions.open(tenant="acme", platform_id=moodle.id, user=f"lti:{moodle.id}:u1", course=course)
    other = sessions.open(tenant="beta", platform_id=second.id, user=f"lti:{second.id}:u1")
    removed = platforms.remove(moodle.id)
    assert (removed.id, removed.deployment_ids) == (moodle.id, ("1", "7"))
    with pytest.raises(NotFound):
        platforms.get(moodle.id)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LtiState)) == 0
    with pytest.raises(Exception, match="not valid"):
        sessions.verify(token)
    assert sessions.verify(other).platform_id == second.id
    assert [c.collection for c in courses(db, tenant="acme")] == [course.collection]
    with pytest.raises(NotFound):
        platforms.remove(moodle.id)


# -- the tool's keys ----------------------------------------------------------------------------

def _verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}  # public parts only
    claims: dict[str, Any] = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="aud-1")
    return claims


def test_two_processes_making_the_first_key_at_once_end_with_one(db_url: str) -> None:
    stores = [ToolKeys(Database(db_url), LtiSettings()) for _ in range(4)]
    start = threading.Barrier(len(stores))
    found: list[str] = []

    def first_use(keys: ToolKeys) -> None:
        start.wait()
        found.append(keys.signing_key()[0])

    threads = [threading.Thread(target=first_use, args=(k,)) for k in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [FIRST_KID] * len(stores)
    with stores[0].db.session() as s:
        assert s.scalar(select(func.count()).select_from(LtiKey)) == 1
    token = stores[1].sign({"aud": "aud-1", "sub": "x"})
    assert _verify(token, stores[2].jwks())["sub"] == "x"


def test_rotation_keeps_the_old_key_published_within_the_grace(db_url: str) -> None:
    db = Database(db_url)
    keys = ToolKeys(db, LtiSettings())
    other_process = ToolKeys(Database(db_url), LtiSettings())
    assert other_process.jwks()["keys"][0]["kid"] == FIRST_KID  # the key set is never empty
    old_token = keys.sign({"aud": "aud-1", "n": 1})
    new_kid = other_process.rotate()
    assert new_kid != FIRST_KID
    assert keys.signing_key()[0] == FIRST_KID  # cached for recheck_s
    keys.recheck_s = 0  # as if 5 s had passed: the rotation by another process is noticed
    assert keys.signing_key()[0] == new_kid
    jwks = keys.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, FIRST_KID]  # the active one first
    assert _verify(old_token, jwks)["n"] == 1 and _verify(keys.sign({"aud": "aud-1", "n": 2}), jwks)["n"] == 2
    listed = {k.kid: k for k in keys.list()}
    assert listed[new_kid].active and listed[new_kid].published and listed[new_kid].retired_at is None
    assert not listed[FIRST_KID].active and listed[FIRST_KID].published and listed[FIRST_KID].retired_at
    assert [k["kid"] for k in ToolKeys(db, LtiSettings(retired_key_grace_s=0)).jwks()["keys"]] == [new_kid]
    with db.session() as s:  # the grace (a week by default) is over
        s.execute(update(LtiKey).where(LtiKey.kid == FIRST_KID)
                  .values(retired_at=datetime.now(UTC) - timedelta(days=8)))
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new_kid]
    assert not {k.kid: k for k in keys.list()}[FIRST_KID].published
    assert jwt.get_unverified_header(old_token)["kid"] not in {k["kid"] for k in keys.jwks()["keys"]}


def test_a_passphrase_encrypts_the_stored_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    keys = ToolKeys(db, LtiSettings(key_passphrase="correct horse"))
    token = keys.sign({"aud": "aud-1"})
    with db.session() as s:
        row = s.get(LtiKey, FIRST_KID)
        assert row is not None and row.encrypted and "ENCRYPTED PRIVATE KEY" in row.private_pem
    again = ToolKeys(db, LtiSettings(key_passphrase="correct horse"))
    assert _verify(again.sign({"aud": "aud-1", "n": 3}), again.jwks())["n"] == 3
    assert _verify(token, again.jwks()) == {"aud": "aud-1"}
    with pytest.raises(ConfigError, match="is stored encrypted: set MENTORLY_LTI__KEY_PASSPHRASE"):
        ToolKeys(db, LtiSettings()).signing_key()
    with pytest.raises(ConfigError, match="MENTORLY_LTI__KEY_PASSPHRASE does not decrypt"):
        ToolKeys(db, LtiSettings(key_passphrase="wrong")).signing_key()
    lost = ToolKeys(db, LtiSettings())  # a lost passphrase: a new (unencrypted) key
    kid = lost.rotate()
    assert lost.signing_key()[0] == kid and not {k.kid: k for k in lost.list()}[kid].encrypted


# -- mentorly lti ---------------------------------------------------------------------------------

def _mentorly(tmp_path: Path, *args: str) -> Any:
    env = {"MENTORLY_HOME": str(tmp_path), "MENTORLY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "MENTORLY_LTI__PUBLIC_URL": "https://mentorly.school.example"}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _platform_args(**changes: str) -> list[str]:
    values = {**{k: v for k, v in MOODLE.items() if k != "deployment_ids"}, **changes}
    args = ["lti", "add-platform", "--tenant", "acme", "--deployment-id", "1"]
    for key, value in values.items():
        args += ["--" + key.replace("_", "-"), value]
    return args


def test_the_cli_registers_platforms_and_prints_what_to_paste(tmp_path: Path) -> None:
    added = _mentorly(tmp_path, *_platform_args(), "--shared-collection", "handbook")
    assert added.exit_code == 0, added.stderr
    platform_id = added.stdout.splitlines()[0]
    assert len(platform_id) == 32
    for expected in ("https://mentorly.school.example/lti/launch", "https://mentorly.school.example/lti/login",
                     "https://mentorly.school.example/lti/jwks", "LtiDeepLinkingRequest", FIRST_KID):
        assert expected in added.stdout
    assert "Warning" not in added.stderr
    duplicate = _mentorly(tmp_path, *_platform_args())
    assert duplicate.exit_code == 1 and "already registered" in duplicate.stderr
    bad = _mentorly(tmp_path, *_platform_args(client_id="other", key_set_url="http://lms.example/certs"))
    assert bad.exit_code == 1 and "public keyset URL" in bad.stderr and "must use https" in bad.stderr
    second = _mentorly(tmp_path, *_platform_args(client_id="canvas-1"), "--json")
    assert second.exit_code == 0, second.stderr
    payload = json.loads(second.stdout)
    assert payload["platform"]["client_id"] == "canvas-1" and payload["tool"]["kid"] == FIRST_KID

    listed = _mentorly(tmp_path, "lti", "list", "--json")
    assert [p["id"] for p in json.loads(listed.stdout)] == [platform_id, payload["platform"]["id"]]
    assert json.loads(listed.stdout)[0]["shared_collections"] == ["handbook"]
    assert _mentorly(tmp_path, "lti", "list", "--tenant", "beta").stdout.startswith("No LTI platforms")
    assert platform_id in _mentorly(tmp_path, "lti", "list").stdout
    assert "1, 42" in _mentorly(tmp_path, "lti", "add-deployment", platform_id, "42").stdout

    config = json.loads(_mentorly(tmp_path, "lti", "config", "--json").stdout)
    assert config["launch_url"] == config["deep_link_url"] == config["redirect_uris"][0]
    assert config["messages"] == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]
    assert config["canvas"]["oidc_initiation_url"] == config["login_url"] and config["public"]
    rotated = _mentorly(tmp_path, "lti", "rotate-key")
    assert rotated.exit_code == 0, rotated.stderr
    new_kid = rotated.stdout.strip()
    keys = json.loads(_mentorly(tmp_path, "lti", "keys", "--json").stdout)
    assert [(k["kid"], k["active"], k["published"]) for k in keys] == [(new_kid, True, True),
                                                                        (FIRST_KID, False, True)]
    assert "active" in _mentorly(tmp_path, "lti", "keys").stdout
    removed = _mentorly(tmp_path, "lti", "remove", platform_id)
    assert removed.exit_code == 0 and platform_id in removed.stdout
    missing = _mentorly(tmp_path, "lti", "remove", platform_id)
    assert missing.exit_code == 1 and "no LTI platform" in missing.stderr

    everything = " ".join(r.stdout + r.stderr for r in (added, second, rotated))
    assert "PRIVATE KEY" not in everything
    log = json.loads(_mentorly(tmp_path, "audit", "--json").stdout)
    assert [e["action"] for e in log] == [audit.LTI_PLATFORM_REMOVED, audit.LTI_KEY_ROTATED,
                                          "lti.deployment_added", audit.LTI_PLATFORM_ADDED,
                                          audit.LTI_PLATFORM_ADDED]
    assert all(e["actor"].startswith("cli:") for e in log) and log[0]["target"] == platform_id


def test_cli_config_warns_without_a_public_url(tmp_path: Path) -> None:
    env = {"MENTORLY_HOME": str(tmp_path), "MENTORLY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = CliRunner().invoke(cli, ["lti", "config"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "http://127.0.0.1:7860/lti/launch" in result.stdout
    assert "MENTORLY_LTI__PUBLIC_URL" in result.stderr


# -- the admin API and /lti/jwks ------------------------------------------------------------------

def test_the_admin_api_registers_platforms_for_its_own_tenant(tmp_path: Path, db_url: str) -> None:
    runtime = make_runtime(tmp_path, database_url=db_url)
    app = create_app(runtime, with_ui=False)
    acme, acme_info = app.state.keys.create("acme", "admin")
    beta, _ = app.state.keys.create("beta", "admin")
    chat, _ = app.state.keys.create("acme", "chat")
    acme_h, beta_h = {"Authorization": f"Bearer {acme}"}, {"Authorization": f"Bearer {beta}"}
    body = {**MOODLE, "shared_collections": ["handbook"], "name": "Moodle"}
    with TestClient(app) as client:
        created = client.post("/api/lti/platforms", json=body, headers=acme_h)
        assert created.status_code == 201, created.text
        platform = created.json()
        assert platform["tenant"] == "acme" and platform["deployment_ids"] == ["1"]
        path = f"/api/lti/platforms/{platform['id']}"
        assert_error(client.post("/api/lti/platforms", json=body, headers=beta_h), 409, "conflict",
                     "already registered")
        assert_error(client.post("/api/lti/platforms", json={**body, "client_id": "x",
                                                             "auth_login_url": "http://lms.example/auth"},
                                 headers=acme_h), 422, "invalid_input", "https")
        assert_error(client.post("/api/lti/platforms", json={**body, "tenant": "beta"}, headers=acme_h),
                     422, "invalid_input")
        assert_error(client.post("/api/lti/platforms", json={**body, "deployment_ids": []}, headers=acme_h),
                     422, "invalid_input")
        assert client.get("/api/lti/platforms", headers=acme_h).json()["platforms"] == [platform]
        assert client.get(path, headers=acme_h).json() == platform
        # another tenant's admin: the platform reads as unknown, exactly like a made-up id
        assert client.get("/api/lti/platforms", headers=beta_h).json() == {"platforms": []}
        unknown = client.get("/api/lti/platforms/" + "f" * 32, headers=beta_h).json()["error"]["message"]
        theirs = client.get(path, headers=beta_h)
        assert_error(theirs, 404, "not_found")
        assert theirs.json()["error"]["message"] == unknown.replace("f" * 32, platform["id"])
        assert_error(client.delete(path, headers=beta_h), 404, "not_found")
        for method, url in (("GET", "/api/lti/platforms"), ("POST", "/api/lti/platforms"), ("GET", path),
                            ("DELETE", path), ("GET", "/api/lti/config")):
            r = client.request(method, url, headers={"Authorization": f"Bearer {chat}"},
                               json=body if method == "POST" else None)
            assert_error(r, 403, "forbidden", "admin")
        assert_error(client.get("/api/lti/platforms"), 401, "unauthorized")

        config = client.get("/api/lti/config", headers=acme_h)
        assert config.status_code == 200, config.text
        assert config.json()["jwks_url"].endswith("/lti/jwks") and config.json()["kid"] == FIRST_KID
        jwks = client.get("/lti/jwks")  # public: no key
        assert jwks.status_code == 200 and jwks.headers["cache-control"] == "public, max-age=300"
        token = app.state.lti_keys.sign({"aud": "aud-1", "iss": "mentorly"})
        assert _verify(token, jwks.json())["iss"] == "mentorly"
        assert tool_keys(app) is app.state.lti_keys  # one instance per app, for the launch to sign with
        assert client.delete(path, headers=acme_h).json() == platform
        assert_error(client.get(path, headers=acme_h), 404, "not_found")
        every = " ".join(r.text for r in (created, config, jwks))
        assert "PRIVATE" not in every and '"d"' not in jwks.text
    found = audit.entries(runtime.db, tenant="acme")
    assert [(e.action, e.actor, e.target) for e in found] == [
        (audit.LTI_PLATFORM_REMOVED, f"key:{acme_info.prefix}", platform["id"]),
        (audit.LTI_PLATFORM_ADDED, f"key:{acme_info.prefix}", platform["id"])]


def test_the_jwks_route_makes_the_first_key(tmp_path: Path) -> None:
    app = create_app(make_runtime(tmp_path), with_ui=False)
    started = time.perf_counter()
    with TestClient(app) as client:
        keys = client.get("/lti/jwks").json()["keys"]
    assert [k["kid"] for k in keys] == [FIRST_KID] and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
    assert time.perf_counter() - started < 5
