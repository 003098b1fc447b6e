"""LTI 1.3 launches (#17) against a simulated platform (``tests.support.lti_platform``: its own
RSA key, a JWKS on a loopback port, the OIDC flow driven with an HTTP client) and a live server
with the fake LLM, on SQLite and on PostgreSQL (``module_db_url``).

Accepted: a learner's and an instructor's launch (page, session, user, course, audit and usage
rows) and deep linking (a content item signed with the tool's key, posted to the return URL the
signed launch named). Refused, each with its page, status and ``lti.launch_refused`` audit row
and nothing else written: a forged signature, a wrong audience or issuer, an unknown deployment,
an expired token, a replayed state or nonce, a message type the tool does not handle, alg none
and HS256, and more."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import func, select, update

from assistant import audit
from assistant.lti.launch import INSTRUCTOR_ROLES, Launcher
from assistant.lti.sessions import LtiSessions
from assistant.storage import User
from assistant.storage.lti import LtiCourse, LtiSession, LtiState
from assistant.storage.usage import UsageRecord
from tests.support.live_api import LiveServer, make_runtime, serve
from tests.support.lti_platform import (
    DEEP_LINKING,
    DL,
    SimulatedPlatform,
    claim,
    other_private_key,
)

TENANT = "school"
SESSION_RE = re.compile(r"lti_[A-Za-z0-9_-]{43}")


class Env:
    def __init__(self, server: LiveServer, app: Any, platform: SimulatedPlatform) -> None:
        self.server, self.app, self.platform = server, app, platform
        self.runtime = app.state.runtime
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self.launcher: Launcher = app.state.lti_launcher
        self.sessions: LtiSessions = app.state.lti_sessions

    def count(self, model: Any, *where: Any) -> int:
        with self.runtime.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def snapshot(self) -> tuple[int, int, int, int]:
        """Users, sessions, accepted launches and refusals so far."""
        return (self.count(User), self.count(LtiSession), len(self.audits(audit.LTI_LAUNCH)),
                len(self.audits(audit.LTI_LAUNCH_REFUSED)))

    def audits(self, action: str) -> list[audit.AuditItem]:
        return audit.entries(self.runtime.db, action=action, limit=1000)

    def session_of(self, page: httpx.Response) -> Any:
        found = SESSION_RE.findall(page.text)
        assert found, page.text[:500]
        return self.sessions.verify(found[0])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Env]:
    runtime = make_runtime(tmp_path_factory.mktemp("lti-launch"), database_url=module_db_url)
    # over a hundred launches from one address in seconds: the flood guard is tested in test_lti_flow
    runtime.settings.lti.requests_per_minute_per_ip = 0
    server, app = serve(runtime)
    runtime.settings.lti.public_url = server.url  # the launch URL platforms are given
    platform = SimulatedPlatform()
    platform.register(runtime.db, TENANT)
    yield Env(server, app, platform)
    platform.stop()
    server.stop()


def _location_query(r: httpx.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}


# -- login initiation ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "GET"])
def test_login_redirects_to_the_platform_with_state_and_nonce_and_no_cookie(env: Env, method: str) -> None:
    r = env.platform.login(env.client, login_hint="learner-7", method=method, lti_message_hint="msg-1")
    assert r.status_code == 302, r.text
    assert "set-cookie" not in r.headers
    assert r.headers["location"].startswith(env.platform.auth_url + "?")
    q = _location_query(r)
    assert {k: q[k] for k in ("scope", "response_type", "response_mode", "prompt", "client_id", "redirect_uri",
                              "login_hint", "lti_message_hint")} == {
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
        "client_id": env.platform.client_id, "redirect_uri": f"{env.server.url}/lti/launch",
        "login_hint": "learner-7", "lti_message_hint": "msg-1"}
    assert q["state"] != q["nonce"] and len(q["state"]) >= 32
    with env.runtime.db.session() as s:
        row = s.get(LtiState, q["state"])
        assert row is not None and row.nonce == q["nonce"] and row.platform_id == env.platform.platform_id


@pytest.mark.parametrize(("params", "status", "reason"), [
    ({"iss": "https://unknown-lms.example"}, 403, "unknown_platform"),
    ({"client_id": "another-client"}, 403, "unknown_platform"),
    ({"target_link_uri": "https://evil.example/lti/launch"}, 400, "wrong_target"),
    ({"lti_deployment_id": "not-deployed"}, 403, "unknown_deployment"),
    ({"login_hint": ""}, 400, "bad_request"),
])
def test_login_refusals_are_clear_pages_with_an_audit_row(env: Env, params: dict[str, str], status: int,
                                                          reason: str) -> None:
    before = env.snapshot()
    with env.runtime.db.session() as s:
        states = s.scalar(select(func.count()).select_from(LtiState))
    r = env.platform.login(env.client, **params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html") and "<h1>" in r.text and reason in r.text
    refused = env.audits(audit.LTI_LAUNCH_REFUSED)
    assert len(refused) == before[3] + 1
    row = refused[0]
    assert row.details["reason"] == reason and row.details["step"] == "login"
    assert row.details["issuer"] == params.get("iss", env.platform.issuer)
    if reason != "unknown_platform":
        assert row.tenant == TENANT and row.actor == f"lti:{env.platform.platform_id}"
    with env.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(LtiState)) == states


# -- accepted launches --------------------------------------------------------------------------

def test_learner_launch_opens_the_chat_page_with_a_session(env: Env) -> None:
    before = env.snapshot()
    r = env.platform.launch(env.client, role="learner", sub="ann", name="Ann Lee",
                            context=("alg-101", "Algebra I"), locale="en-US")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    assert "x-frame-options" not in r.headers and "set-cookie" not in r.headers
    csp = r.headers["content-security-policy"]
    assert csp.startswith(f"frame-ancestors 'self' {env.platform.issuer}; script-src 'self'")
    assert '<html lang="en"' in r.text and "Algebra I" in r.text and "Ann Lee" in r.text
    session = env.session_of(r)
    user = f"lti:{env.platform.platform_id[:8]}:ann"
    assert (session.tenant, session.user, session.instructor, session.locale) == (TENANT, user, False, "en")
    assert session.course is not None and session.course.title == "Algebra I"
    assert session.collection and session.collection.startswith("lti-") and session.collection in r.text
    assert 'data-role="learner"' in r.text
    assert env.count(User, User.tenant_id == TENANT, User.external_id == user) == 1
    assert env.count(LtiCourse, LtiCourse.context_id == "alg-101",
                     LtiCourse.collection == session.collection) == 1
    after = env.snapshot()
    assert after == (before[0] + 1, before[1] + 1, before[2] + 1, before[3])  # no refusal row
    launch = env.audits(audit.LTI_LAUNCH)[0]
    assert (launch.tenant, launch.target, launch.actor) == (TENANT, user, f"lti:{env.platform.platform_id}")
    assert launch.details["role"] == "learner" and launch.details["course"] == session.collection
    with env.runtime.db.session() as s:
        usage = s.scalars(select(UsageRecord).where(UsageRecord.user == user)).all()
    assert [(u.surface, u.launches, u.course, u.key, u.tenant_id) for u in usage] == [
        ("lti", 1, session.collection, f"lti:{env.platform.platform_id}", TENANT)]
    # the same learner again: the same user and course, a new session
    again = env.platform.launch(env.client, role="learner", sub="ann", context=("alg-101", "Algebra I"))
    assert again.status_code == 200 and env.session_of(again).collection == session.collection
    assert env.count(User, User.external_id == user) == 1


def test_instructor_launch_in_chinese(env: Env) -> None:
    r = env.platform.launch(env.client, role="instructor", sub="prof-li", name="李老师",
                            context=("phy-2", "物理 二"), locale="zh-CN")
    assert r.status_code == 200, r.text
    assert '<html lang="zh"' in r.text and 'data-role="instructor"' in r.text
    session = env.session_of(r)
    assert session.instructor and session.locale == "zh" and session.display_name == "李老师"
    assert session.roles and all(isinstance(role, str) for role in session.roles)


@pytest.mark.parametrize(("roles", "instructor"), [
    (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"], True),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"], True),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"], True),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], False),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
      "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], False),
    ([], False),
])
def test_roles_come_from_the_signed_launch(env: Env, roles: list[str], instructor: bool) -> None:
    r = env.platform.launch(env.client, sub="role-check", roles=roles)
    assert r.status_code == 200, r.text
    assert env.session_of(r).instructor is instructor
    assert any(role in INSTRUCTOR_ROLES for role in roles) is instructor


def test_the_signed_return_url_may_frame_the_page_too(env: Env) -> None:
    """Canvas: the issuer is canvas.instructure.com, its pages are on the school's own host."""
    def canvas(claims: dict[str, Any]) -> None:
        claims[claim("launch_presentation")]["return_url"] = "https://School.LMS.example/courses/3/external"

    r = env.platform.launch(env.client, sub="canvas-user", tamper=canvas)
    assert r.status_code == 200, r.text
    ancestors = r.headers["content-security-policy"].split(";")[0].split()
    assert ancestors == ["frame-ancestors", "'self'", env.platform.issuer, "https://school.lms.example"]


def test_opening_the_launch_url_directly_explains_itself(env: Env) -> None:
    r = env.client.get("/lti/launch")
    assert r.status_code == 400 and "not directly" in r.text
    assert env.audits(audit.LTI_LAUNCH_REFUSED)[0].details["reason"] == "bad_request"


def test_launch_without_a_course_context(env: Env) -> None:
    r = env.platform.launch(env.client, sub="no-course", context=None)
    assert r.status_code == 200, r.text
    session = env.session_of(r)
    assert session.course is None and session.collection is None


# -- deep linking -------------------------------------------------------------------------------

def test_deep_linking_answers_a_signed_content_item_to_the_return_url(env: Env) -> None:
    r = env.platform.launch(env.client, role="instructor", sub="prof-dl", message_type=DEEP_LINKING,
                            context=("bio-1", "Biology"))
    assert r.status_code == 200, r.text
    assert 'action="/lti/deep-link"' in r.text and 'value="Mentorly — Biology"' in r.text
    assert "frame-ancestors 'self' " + env.platform.issuer in r.headers["content-security-policy"]
    token = SESSION_RE.findall(r.text)[0]
    assert env.sessions.verify(token).message_type == DEEP_LINKING
    before = len(env.audits(audit.LTI_DEEP_LINK))
    answer = env.client.post("/lti/deep-link", data={
        "session": token, "title": "Biology assistant", "text": "Ask about the course.",
        "deep_link_return_url": "https://evil.example/steal"})  # ignored: only the signed launch names it
    assert answer.status_code == 200, answer.text
    form = re.search(r'<form id="dl" method="post" action="([^"]+)"><input type="hidden" name="JWT" '
                     r'value="([^"]+)">', answer.text)
    assert form is not None, answer.text
    assert form.group(1) == env.platform.deep_link_return_url
    script = re.search(r"<script>(.*?)</script>", answer.text)
    assert script is not None and script.group(1) == 'document.getElementById("dl").submit();'
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in answer.headers["content-security-policy"]
    signed = form.group(2)
    keys = jwt.PyJWKClient(f"{env.server.url}/lti/jwks")
    claims = jwt.decode(signed, keys.get_signing_key_from_jwt(signed).key, algorithms=["RS256"],
                        audience=env.platform.issuer, issuer=env.platform.client_id)
    assert claims[claim("message_type")] == "LtiDeepLinkingResponse"
    assert claims[claim("version")] == "1.3.0"
    assert claims[claim("deployment_id")] == env.platform.deployment_id
    assert claims[DL + "data"] == "opaque-platform-data-42"
    assert claims["exp"] - claims["iat"] == 300 and claims["nonce"]
    assert claims[DL + "content_items"] == [{"type": "ltiResourceLink", "title": "Biology assistant",
                                             "text": "Ask about the course.",
                                             "url": f"{env.server.url}/lti/launch"}]
    rows = env.audits(audit.LTI_DEEP_LINK)
    assert len(rows) == before + 1 and rows[0].tenant == TENANT and rows[0].details["title"] == "Biology assistant"
    # the picker session answers once
    again = env.client.post("/lti/deep-link", data={"session": token, "title": "x"})
    assert again.status_code == 401 and "session" in again.text


def test_deep_link_form_needs_an_instructor_picker_session(env: Env) -> None:
    learner = env.session_of(env.platform.launch(env.client, role="learner", sub="dl-learner"))
    token = SESSION_RE.findall(env.platform.last.response.text)[0] if env.platform.last else ""
    assert env.sessions.verify(token).user == learner.user
    before = env.snapshot()
    r = env.client.post("/lti/deep-link", data={"session": token, "title": "x"})
    assert r.status_code == 401 and "<h1>" in r.text
    r = env.client.post("/lti/deep-link", data={"session": "lti_" + "x" * 43, "title": "x"})
    assert r.status_code == 401
    refused = env.audits(audit.LTI_LAUNCH_REFUSED)[:2]
    assert [row.details["step"] for row in refused] == ["deep_link", "deep_link"]
    assert env.snapshot()[:3] == before[:3]


# -- refusals -----------------------------------------------------------------------------------

def _set(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def tamper(claims: dict[str, Any]) -> None:
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return tamper


def _expired(claims: dict[str, Any]) -> None:
    now = int(time.time())
    claims["iat"], claims["exp"] = now - 7200, now - 3600


REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("forged signature", {"key": "other"}, 401, "bad_signature"),
    ("unknown key id", {"key": "other", "kid": "not-published"}, 401, "unknown_key"),
    ("wrong audience", {"tamper": _set("aud", "another-tool")}, 401, "wrong_audience"),
    ("audiences without azp", {"tamper": _set("aud", ["mentorly-test-client", "another-tool"])},
     401, "wrong_audience"),
    ("wrong azp", {"tamper": _set("azp", "another-tool")}, 401, "wrong_audience"),
    ("unknown deployment", {"tamper": _set(claim("deployment_id"), "deployment-999")}, 403, "unknown_deployment"),
    ("expired token", {"tamper": _expired}, 401, "expired"),
    ("issued in the future", {"tamper": _set("iat", int(time.time()) + 3600)}, 401, "expired"),
    ("wrong issuer", {"tamper": _set("iss", "https://evil-lms.example")}, 401, "wrong_issuer"),
    ("unhandled message type", {"tamper": _set(claim("message_type"), "LtiSubmissionReviewRequest")},
     400, "message_type"),
    ("alg none", {"alg": "none"}, 401, "bad_alg"),
    ("alg HS256", {"alg": "HS256"}, 401, "bad_alg"),
    ("nonce of another login", {"tamper": _set("nonce", "a-nonce-from-elsewhere")}, 401, "nonce"),
    ("wrong LTI version", {"tamper": _set(claim("version"), "1.1.0")}, 400, "wrong_version"),
    ("no sub", {"tamper": _set("sub", None)}, 400, "anonymous"),
    ("control characters in sub", {"tamper": _set("sub", "ann\x00")}, 400, "anonymous"),
    ("no resource link", {"tamper": _set(claim("resource_link"), None)}, 401, "missing_claim"),
    ("no exp", {"tamper": _set("exp", None)}, 401, "missing_claim"),
    ("learner deep linking", {"message_type": DEEP_LINKING}, 403, "not_instructor"),
    ("deep linking without a return URL",
     {"message_type": DEEP_LINKING, "role": "instructor",
      "tamper": _set(DL + "deep_linking_settings", {"deep_link_return_url": "javascript:alert(1)"})},
     401, "missing_claim"),
]


@pytest.mark.parametrize(("case", "options", "status", "reason"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refused_launches_show_a_page_and_leave_an_audit_row_only(env: Env, case: str, options: dict[str, Any],
                                                                  status: int, reason: str) -> None:
    if options.get("key") == "other":
        options = {**options, "key": other_private_key()}
    before = env.snapshot()
    r = env.platform.launch(env.client, sub=f"refused-{reason}", **options)
    assert r.status_code == status, (case, r.text[:400])
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>" in r.text and reason in r.text and "lti_" not in r.text
    assert r.headers["cache-control"] == "no-store"
    users, sessions, launches, refusals = env.snapshot()
    assert (users, sessions, launches) == before[:3], case  # nothing opened, nothing accepted
    assert refusals == before[3] + 1
    row = env.audits(audit.LTI_LAUNCH_REFUSED)[0]
    assert row.details["reason"] == reason and row.details["step"] == "launch"
    assert row.tenant == TENANT and row.actor == f"lti:{env.platform.platform_id}"
    assert {"issuer", "client_id", "deployment", "message_type"} <= set(row.details)


def test_a_replayed_launch_is_refused(env: Env) -> None:
    first = env.platform.launch(env.client, sub="replayer")
    assert first.status_code == 200
    last = env.platform.last
    assert last is not None
    before = env.snapshot()
    replay = env.platform.post_launch(env.client, last.id_token, last.state)  # the same post again
    assert replay.status_code == 401 and "already used" in replay.text
    # the old id_token with a fresh login's state: its nonce is the old login's
    fresh = _location_query(env.platform.login(env.client, login_hint="replayer"))
    stale = env.platform.post_launch(env.client, last.id_token, fresh["state"])
    assert stale.status_code == 401
    reasons = [row.details["reason"] for row in env.audits(audit.LTI_LAUNCH_REFUSED)[:2]]
    assert reasons == ["nonce", "state"]
    assert env.snapshot()[:3] == before[:3]


@pytest.mark.parametrize("returning", [True, False], ids=["delete-returning", "select-then-delete"])
def test_two_simultaneous_posts_of_one_launch_open_one_session(env: Env, returning: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env.runtime.db.engine.dialect, "delete_returning", returning)
    login = _location_query(env.platform.login(env.client, login_hint="racer"))
    token = env.platform.id_token(login["nonce"], sub="racer")
    results: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=env.server.url, timeout=30) as c:
            results.append(env.platform.post_launch(c, token, login["state"]).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 401, 401, 401]


def test_an_expired_state_and_unknown_states_are_refused(env: Env) -> None:
    login = _location_query(env.platform.login(env.client, login_hint="slow"))
    with env.runtime.db.session() as s:
        s.execute(update(LtiState).where(LtiState.state == login["state"])
                  .values(expires_at=LtiState.created_at))
    token = env.platform.id_token(login["nonce"], sub="slow")
    r = env.platform.post_launch(env.client, token, login["state"])
    expired = env.audits(audit.LTI_LAUNCH_REFUSED)[0]
    assert r.status_code == 401 and expired.details["reason"] == "state_expired" and expired.tenant == TENANT
    for state in ("", "x" * 43, "short"):
        r = env.platform.post_launch(env.client, token, state)
        assert r.status_code in (400, 401)
    r = env.client.post("/lti/launch", data={"state": "x" * 43})
    assert r.status_code == 400 and env.audits(audit.LTI_LAUNCH_REFUSED)[0].details["reason"] == "bad_request"


def test_refusal_page_speaks_the_launch_language(env: Env) -> None:
    r = env.platform.launch(env.client, locale="zh-TW", tamper=_set("aud", "another-tool"))
    assert r.status_code == 401 and '<html lang="zh"' in r.text and "受众" in r.text
    r = env.client.get("/lti/login", params={"iss": "https://nobody.example", "login_hint": "x",
                                             "target_link_uri": "x"}, headers={"Accept-Language": "zh-CN,zh"})
    assert r.status_code == 403 and "此学习平台尚未注册" in r.text


def test_oversized_and_malformed_posts_are_refused(env: Env) -> None:
    r = env.client.post("/lti/launch", data={"id_token": "x" * (300 * 1024), "state": "s"})
    assert r.status_code == 413 and "<h1>" in r.text
    assert env.audits(audit.LTI_LAUNCH_REFUSED)[0].details["reason"] == "too_large"
    r = env.client.post("/lti/launch", content=b"id_token=not.a.jwt&state=" + b"y" * 43,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401 and env.audits(audit.LTI_LAUNCH_REFUSED)[0].details["reason"] == "state"


def test_the_key_set_is_cached_and_fetched_again_for_a_new_key(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.launcher.key_sets.forget()
    fetches = env.platform.jwks_fetches
    for n in range(3):
        assert env.platform.launch(env.client, sub=f"cached-{n}").status_code == 200
    assert env.platform.jwks_fetches == fetches + 1
    rotated = other_private_key()
    env.platform.extra_keys.append(env.platform.public_jwk(rotated, "platform-key-2"))
    monkeypatch.setattr(env.launcher.key_sets, "cooldown_s", 0.0)
    env.launcher.key_sets.forget()
    assert env.platform.launch(env.client, sub="cached-x").status_code == 200
    try:
        r = env.platform.launch(env.client, sub="rotated", key=rotated, kid="platform-key-2")
        assert r.status_code == 200, r.text
    finally:
        env.platform.extra_keys.clear()
        env.launcher.key_sets.forget()


def test_a_slow_key_set_neither_blocks_the_server_nor_hangs_the_launch(env: Env,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env.launcher.key_sets.forget()
    # a blocked event loop would hold /healthz until the fetch times out (1.5 s); the bound
    # below leaves room for a loaded machine (this once flaked at 0.4 s with a 0.5 s timeout)
    monkeypatch.setattr(env.launcher.key_sets, "timeout_s", 1.5)
    env.platform.jwks_delay_s = 3.0
    result: list[httpx.Response] = []
    try:
        worker = threading.Thread(target=lambda: result.append(env.platform.launch(env.client, sub="slow-keys")))
        worker.start()
        time.sleep(0.1)
        started = time.monotonic()
        with httpx.Client(base_url=env.server.url, timeout=5) as c:
            assert c.get("/healthz").status_code == 200
        assert time.monotonic() - started < 1.0  # the event loop was not waiting on the fetch
        worker.join(timeout=10)
    finally:
        env.platform.jwks_delay_s = 0.0
        env.launcher.key_sets.forget()
    assert result and result[0].status_code == 502 and "keys_unavailable" in result[0].text
