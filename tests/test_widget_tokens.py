"""Widget keys and learner tokens: origin allowlist, HS256 verification, anonymous visitors,
and the widget endpoints over HTTP (no browser). Every test that stores keys or learners runs on
SQLite and on PostgreSQL (``db_url``, ``module_db_url``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from sqlalchemy import select

from assistant.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from assistant.security.widget_tokens import WidgetKeys, normalize_origin, parse_origins, sign_token
from assistant.storage import Database, User
from tests.support.api_tools import png
from tests.support.live_api import LiveServer, make_runtime, serve

SITE = "https://school.example"


@pytest.fixture
def keys(db_url: str) -> WidgetKeys:
    return WidgetKeys(Database(db_url))


def test_origins_are_normalized_and_checked() -> None:
    assert normalize_origin("HTTPS://School.Example:443/") == SITE
    assert normalize_origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert parse_origins("https://b.example, https://a.example,https://a.example") == \
        ["https://a.example", "https://b.example"]
    for bad in ("https://*.example", "ftp://x.example", "https://x.example/path", "school.example", ""):
        with pytest.raises(InvalidInput):
            parse_origins(bad)


def test_a_signed_token_names_the_learner(keys: WidgetKeys) -> None:
    info, secret = keys.create("acme", [SITE])
    assert info.key.startswith("pk_") and secret.startswith("wsk_")
    token = sign_token(secret, tenant="acme", user="u-42", name="Ann", course="alg-1", key=info.key)
    learner = keys.verify(info.key, SITE, token)
    assert (learner.tenant, learner.external_id, learner.display_name, learner.course) == \
        ("acme", "u-42", "Ann", "alg-1")
    assert not learner.anonymous


@pytest.mark.parametrize(("make", "message"), [
    (lambda s, k: sign_token(s, tenant="acme", user="u", ttl_s=60, now=time.time() - 3600), "expired"),
    (lambda s, k: sign_token("wsk_" + "f" * 43, tenant="acme", user="u"), "signature"),
    (lambda s, k: sign_token(s, tenant="other", user="u"), "another tenant"),
    (lambda s, k: sign_token(s, tenant="acme", user="u", key="pk_" + "x" * 24), "another widget key"),
    (lambda s, k: sign_token(s, tenant="acme", user="u", ttl_s=7 * 24 * 3600), "longer than"),
    (lambda s, k: jwt.encode({"sub": "u", "tenant": "acme"}, s, algorithm="HS256"), "'exp'"),
    (lambda s, k: jwt.encode({"sub": "u", "tenant": "acme", "exp": time.time() + 60}, None, algorithm="none"),
     "not valid"),
    (lambda s, k: sign_token(s, tenant="acme", user="anon:someone"), "'sub'"),
    (lambda s, k: sign_token(s, tenant="acme", user="learner\x00-7"), "'sub'"),
    (lambda s, k: "not.a.jwt", "not valid"),
])
def test_bad_tokens_are_refused(keys: WidgetKeys, make: object, message: str) -> None:
    info, secret = keys.create("acme", [SITE])
    token = make(secret, info.key)  # type: ignore[operator]
    with pytest.raises(Unauthorized, match=message):
        keys.verify(info.key, SITE, token)


def test_a_token_of_another_tenants_key_is_refused(keys: WidgetKeys) -> None:
    mine, _ = keys.create("acme", [SITE])
    _theirs, their_secret = keys.create("beta", [SITE])
    with pytest.raises(Unauthorized, match="signature"):
        keys.verify(mine.key, SITE, sign_token(their_secret, tenant="acme", user="u"))


def test_origin_anonymous_and_revocation(keys: WidgetKeys) -> None:
    closed, secret = keys.create("acme", [SITE])
    token = sign_token(secret, tenant="acme", user="u")
    for origin in ("https://evil.example", None, "null"):
        with pytest.raises(Forbidden, match="not allowed"):
            keys.verify(closed.key, origin, token)
    with pytest.raises(Unauthorized, match="needs a signed learner token"):
        keys.verify(closed.key, SITE, None)
    opened, _ = keys.create("acme", [SITE], anonymous=True)
    assert keys.verify(opened.key, SITE, None, "abcDEF123456").external_id == "anon:abcDEF123456"
    assert keys.verify(opened.key, SITE, None, "../../etc").external_id == "anon:visitor"
    keys.revoke(closed.key)
    with pytest.raises(Unauthorized, match="revoked"):
        keys.verify(closed.key, SITE, token)
    with pytest.raises(Unauthorized, match="malformed"):
        keys.verify("pk_short", SITE, token)
    with pytest.raises(NotFound):
        keys.revoke("pk_" + "z" * 24)


def test_a_key_revoked_by_another_process_fails_at_once(keys: WidgetKeys) -> None:
    info, secret = keys.create("acme", [SITE])
    token = sign_token(secret, tenant="acme", user="u")
    assert keys.verify(info.key, SITE, token).external_id == "u"  # now cached in this store
    url = keys.db.engine.url.render_as_string(hide_password=False)
    WidgetKeys(Database(url)).revoke(info.key)  # as `mentorly keys revoke` does
    with pytest.raises(Unauthorized, match="revoked"):
        keys.verify(info.key, SITE, token)


class Site:
    def __init__(self, server: LiveServer, app: object, key: str, secret: str) -> None:
        self.server, self.app, self.key, self.secret = server, app, key, secret

    def post(self, path: str, body: dict[str, object], origin: str = SITE) -> httpx.Response:
        return httpx.post(self.server.url + path, content=json.dumps(body), timeout=60,
                          headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Site]:
    runtime = make_runtime(tmp_path_factory.mktemp("widget-http"), tools=True, database_url=module_db_url)
    server, app = serve(runtime)
    info, secret = app.state.widget_keys.create("acme", [SITE])  # type: ignore[attr-defined]
    yield Site(server, app, info.key, secret)
    server.stop()


def test_static_files_are_served(site: Site) -> None:
    js = httpx.get(site.server.url + "/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert ".innerHTML" not in js.text and "insertAdjacentHTML" not in js.text  # textContent only
    assert httpx.get(site.server.url + "/widget.css").headers["content-type"].startswith("text/css")
    assert "/widget.js" in httpx.get(site.server.url + "/widget-demo").text


def test_session_maps_the_learner_to_the_users_table(site: Site) -> None:
    token = sign_token(site.secret, tenant="acme", user="learner-7", name="李雷")
    r = site.post("/widget/api/session", {"key": site.key, "token": token})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.json() == {"tenant": "acme", "anonymous": False, "name": "李雷", "course": None,
                        "conversation_id": None, "messages": []}  # no history yet
    runtime = site.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.session() as s:
        user = s.scalar(select(User).where(User.tenant_id == "acme", User.external_id == "learner-7"))
        assert user is not None and user.display_name == "李雷"


def test_control_characters_in_a_token_are_refused_or_dropped(site: Site) -> None:
    """A NUL cannot be stored in PostgreSQL's text columns (SQLite takes it): refused in the
    learner's id (not a 500 on one database and a stored id on the other), dropped from the name."""
    bad = sign_token(site.secret, tenant="acme", user="learner\x00-8")
    r = site.post("/widget/api/session", {"key": site.key, "token": bad})
    assert r.status_code == 401 and "'sub'" in r.json()["error"]["message"]
    token = sign_token(site.secret, tenant="acme", user="learner-8", name="An\x00n\n", course="alg\x00-1")
    r = site.post("/widget/api/session", {"key": site.key, "token": token})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["course"]) == ("Ann", "alg-1")
    with site.app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
        user = s.scalar(select(User).where(User.tenant_id == "acme", User.external_id == "learner-8"))
        assert user is not None and user.display_name == "Ann"


def test_refusals_are_readable_by_the_widget_and_run_nothing(site: Site) -> None:
    token = sign_token(site.secret, tenant="acme", user="learner-7")
    r = site.post("/widget/api/chat", {"key": site.key, "token": token, "message": "hi"},
                  origin="https://evil.example")
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
    assert r.headers["access-control-allow-origin"] == "https://evil.example"  # to show the reason
    r = httpx.post(site.server.url + "/widget/api/chat", content=b"{not json",
                   headers={"Origin": SITE, "Content-Type": "text/plain"})
    assert r.status_code == 422 and "invalid widget request" in r.json()["error"]["message"]
    r = site.post("/widget/api/chat", {"key": site.key, "token": token, "message": "hi",
                                       "conversation_id": "f" * 32})
    assert r.status_code == 404
    r = site.post("/widget/api/chat", {"key": site.key, "token": token, "message": "hi",
                                       "collection": "../../etc"})
    assert r.status_code == 422  # data-collection is a name, never a path


def test_widget_upload_checks_the_file(site: Site) -> None:
    token = sign_token(site.secret, tenant="acme", user="learner-7")
    url = site.server.url + "/widget/api/uploads"
    ok = httpx.post(url, headers={"Origin": SITE}, data={"key": site.key, "token": token},
                    files={"file": ("a.png", png(), "image/png")})
    assert ok.status_code == 201 and ok.json()["width"] == 64
    bad = httpx.post(url, headers={"Origin": SITE}, data={"key": site.key, "token": token},
                     files={"file": ("a.png", b"not an image", "image/png")})
    assert bad.status_code == 415 and bad.headers["access-control-allow-origin"] == SITE
    foreign = httpx.post(url, headers={"Origin": "https://evil.example"}, data={"key": site.key, "token": token},
                         files={"file": ("a.png", png(), "image/png")})
    assert foreign.status_code == 403


def test_an_oversized_widget_upload_is_refused_before_parsing(site: Site) -> None:
    runtime = site.app.state.runtime  # type: ignore[attr-defined]
    big = b"\x89PNG" + b"0" * (runtime.settings.uploads.max_bytes + 100_000)
    r = httpx.post(site.server.url + "/widget/api/uploads", headers={"Origin": SITE},
                   data={"key": site.key}, files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"
