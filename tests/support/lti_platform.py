"""A simulated LTI 1.3 platform (a Moodle or Canvas stand-in) for tests.

It has its own RSA key and serves, on a loopback port in a background thread:

- ``GET /jwks``: its public key set (``jwks_fetches`` counts the requests; ``extra_keys`` adds
  keys, ``jwks_delay_s`` makes it slow);
- ``GET /auth``: its OIDC authorization endpoint. It answers the tool's redirect with a page that
  form-posts ``id_token`` and ``state`` to the ``redirect_uri``, as a real platform does; the
  id_token is built for the ``login_hint`` from what ``prepare(login_hint, ...)`` said;
- ``GET /course?hint=…&tool=…``: a course page that embeds the tool in an iframe and starts the
  launch inside it (a form posted to the tool's ``/lti/login`` with ``target`` = the iframe);
- ``POST /deep_link_return``: where deep-linking answers arrive (``deep_link_returns``).

Typical use (the tool's ``[lti] public_url`` must be the address the test reaches it at, so the
launch URL the tool expects and the one the platform posts to agree)::

    platform = SimulatedPlatform()                      # or SimulatedPlatform(host="localhost")
    info = platform.register(runtime.db, "school")      # Platforms.add with its URLs
    r = platform.launch(client, role="learner", context=("c-1", "Algebra I"), locale="en")
    assert r.status_code == 200                         # the tool's launched page
    platform.last.state, platform.last.id_token         # what was posted, for replays
    platform.stop()

``launch`` drives the whole OIDC flow with an HTTP client (no browser): login initiation, the
state and nonce read from the 302 ``Location``, then ``id_token`` + ``state`` posted to the
``redirect_uri``. ``tamper`` edits the claims before signing; ``key``/``kid``/``alg`` sign
them otherwise (a forged signature: ``key=other_private_key()``). ``id_token(nonce, ...)`` builds
a token alone (a complete, valid claim set unless overridden).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm

from assistant.lti.platforms import PlatformInfo, Platforms
from assistant.storage import Database
from tests.support.ports import free_port

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
ROLES = {"learner": [MEMBERSHIP + "Learner"],
         "instructor": [MEMBERSHIP + "Instructor",
                        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"]}
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
Tamper = Callable[[dict[str, Any]], dict[str, Any] | None]


def claim(name: str) -> str:
    """``claim("deployment_id")`` → the LTI claim's full name (``…/lti/claim/deployment_id``)."""
    return LTI + name


def other_private_key() -> RSAPrivateKey:
    """A key the platform does not publish: for forged signatures."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """An HS256 JWT by hand (PyJWT refuses an RSA public key as an HMAC secret, which is exactly
    the algorithm-confusion attack a tool must refuse)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@dataclass
class LaunchSpec:
    """Who a ``login_hint`` is and what their launch says (for the ``/auth`` endpoint)."""

    role: str = "learner"
    context: tuple[str, str] | None = ("course-1", "Algebra I")
    locale: str = "en"
    message_type: str = RESOURCE_LINK
    name: str = ""
    tamper: Tamper | None = None


@dataclass
class LastLaunch:
    """What ``launch`` did last: for replays and assertions."""

    login: httpx.Response
    state: str
    nonce: str
    redirect_uri: str
    id_token: str
    claims: dict[str, Any]
    response: httpx.Response


@dataclass
class SimulatedPlatform:
    """See the module's docstring. ``host`` is the name browsers use for it (``localhost`` makes
    it another *site* than a tool on 127.0.0.1, not only another origin)."""

    host: str = "127.0.0.1"
    client_id: str = "mentorly-test-client"
    deployment_id: str = "deployment-1"
    kid: str = "platform-key-1"
    key: RSAPrivateKey = field(default_factory=other_private_key)
    extra_keys: list[dict[str, Any]] = field(default_factory=list)
    jwks_delay_s: float = 0.0
    jwks_fetches: int = 0
    deep_link_returns: list[dict[str, str]] = field(default_factory=list)
    specs: dict[str, LaunchSpec] = field(default_factory=dict)
    last: LastLaunch | None = None

    def __post_init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://{self.host}:{self.port}"
        self.auth_url = f"{self.issuer}/auth"
        self.jwks_url = f"http://127.0.0.1:{self.port}/jwks"  # the tool fetches it: no name lookup
        self.deep_link_return_url = f"{self.issuer}/deep_link_return"
        self.platform_id = ""
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="lti-platform")
        self._thread.start()

    # -- set-up ---------------------------------------------------------------------------------

    def register(self, db: Database, tenant: str, *, deployment_ids: list[str] | None = None,
                 **kw: Any) -> PlatformInfo:
        """Register this platform with the tool (``Platforms.add``) for ``tenant``."""
        info = Platforms(db).add(tenant=tenant, issuer=self.issuer, client_id=self.client_id,
                                 auth_login_url=self.auth_url, key_set_url=self.jwks_url,
                                 deployment_ids=deployment_ids or [self.deployment_id],
                                 auth_token_url=f"{self.issuer}/token", name="Simulated LMS", **kw)
        self.platform_id = info.id
        return info

    def public_jwk(self, key: RSAPrivateKey | None = None, kid: str | None = None) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk((key or self.key).public_key(), as_dict=True)
        return {**jwk, "kid": kid or self.kid, "alg": "RS256", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk(), *self.extra_keys]}

    def prepare(self, login_hint: str, **spec: Any) -> None:
        """What the ``/auth`` endpoint's id_token says for this user (``LaunchSpec`` fields)."""
        self.specs[login_hint] = LaunchSpec(**spec)

    def course_page_url(self, tool_url: str, login_hint: str) -> str:
        """The platform's course page embedding the tool (run ``prepare(login_hint, ...)`` first)."""
        return f"{self.issuer}/course?{urlencode({'hint': login_hint, 'tool': tool_url})}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- tokens ---------------------------------------------------------------------------------

    def claims(self, nonce: str, *, sub: str = "learner-1", role: str = "learner",
               roles: list[str] | None = None, context: tuple[str, str] | None = ("course-1", "Algebra I"),
               locale: str = "en", message_type: str = RESOURCE_LINK, name: str = "",
               target_link_uri: str = "", now: float | None = None) -> dict[str, Any]:
        """A complete, valid LTI 1.3 claim set for this platform."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "sub": sub, "iat": issued, "exp": issued + 300,
            "nonce": nonce, "name": name or f"Test {role.title()} {sub}", "given_name": "Test",
            "family_name": sub, "email": f"{sub}@school.example",
            claim("message_type"): message_type, claim("version"): "1.3.0",
            claim("deployment_id"): self.deployment_id,
            claim("target_link_uri"): target_link_uri,
            claim("roles"): roles if roles is not None else ROLES[role],
            claim("launch_presentation"): {"locale": locale, "document_target": "iframe",
                                           "return_url": f"{self.issuer}/return"},
            claim("tool_platform"): {"guid": "simulated-lms", "product_family_code": "simulated",
                                     "name": "Simulated LMS"},
        }
        if context is not None:
            claims[claim("context")] = {"id": context[0], "title": context[1], "label": context[0],
                                        "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]}
        if message_type == DEEP_LINKING:
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": self.deep_link_return_url,
                "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": False, "data": "opaque-platform-data-42"}
        else:
            claims[claim("resource_link")] = {"id": f"link-{context[0] if context else 'none'}",
                                              "title": "Course assistant"}
        return claims

    def sign(self, claims: dict[str, Any], *, key: RSAPrivateKey | None = None, kid: str | None = None,
             alg: str = "RS256") -> str:
        """``alg``: RS256 (default), ``none`` (unsigned) or HS256 (keyed with the platform's
        public key, the algorithm-confusion attack)."""
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none",  # type: ignore[arg-type]  # unsigned
                              headers={"kid": kid or self.kid})
        if alg == "HS256":
            secret = json.dumps(self.public_jwk(), sort_keys=True).encode()
            return hs256_token(claims, secret, kid or self.kid)
        return jwt.encode(claims, key or self.key, algorithm=alg, headers={"kid": kid or self.kid})

    def id_token(self, nonce: str, *, key: RSAPrivateKey | None = None, kid: str | None = None,
                 alg: str = "RS256", tamper: Tamper | None = None, **claim_options: Any) -> str:
        """A signed id_token: ``claims(nonce, **claim_options)``, edited by ``tamper`` (which may
        change the dict in place or return a new one), signed by ``sign``."""
        claims = self.claims(nonce, **claim_options)
        if tamper is not None:
            claims = tamper(claims) or claims
        return self.sign(claims, key=key, kid=kid, alg=alg)

    # -- the OIDC flow, driven by an HTTP client ------------------------------------------------

    def login(self, client: httpx.Client | str, *, login_hint: str = "learner-1",
              target_link_uri: str | None = None, method: str = "POST",
              **params: str) -> httpx.Response:
        """Login initiation at the tool (``params`` add to or override iss, client_id…)."""
        http_client = _client(client)
        base = str(http_client.base_url).rstrip("/")
        data = {"iss": self.issuer, "login_hint": login_hint,
                "target_link_uri": target_link_uri or f"{base}/lti/launch",
                "lti_message_hint": f"hint-{uuid.uuid4().hex[:8]}", "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id, **params}
        if method == "GET":
            return http_client.get("/lti/login", params=data, follow_redirects=False)
        return http_client.post("/lti/login", data=data, follow_redirects=False)

    def launch(self, client: httpx.Client | str, *, role: str = "learner", sub: str | None = None,
               context: tuple[str, str] | None = ("course-1", "Algebra I"), locale: str = "en",
               message_type: str = RESOURCE_LINK, tamper: Tamper | None = None,
               key: RSAPrivateKey | None = None, kid: str | None = None, alg: str = "RS256",
               name: str = "", roles: list[str] | None = None) -> httpx.Response:
        """Login initiation, then the id_token posted to the launch URL; the tool's response.
        ``platform.last`` keeps the state, nonce and id_token (for replays)."""
        http_client = _client(client)
        sub = sub or f"{role}-1"
        login = self.login(http_client, login_hint=sub)
        if login.status_code != 302:
            raise AssertionError(f"login initiation was not redirected: {login.status_code} {login.text[:300]}")
        location = login.headers["location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if not location.startswith(self.auth_url + "?"):
            raise AssertionError(f"the tool redirected elsewhere than the auth endpoint: {location}")
        claims = self.claims(query["nonce"], sub=sub, role=role, roles=roles, context=context, locale=locale,
                             message_type=message_type, name=name, target_link_uri=query["redirect_uri"])
        if tamper is not None:
            claims = tamper(claims) or claims
        token = self.sign(claims, key=key, kid=kid, alg=alg)
        response = http_client.post(query["redirect_uri"], data={"id_token": token, "state": query["state"]})
        self.last = LastLaunch(login=login, state=query["state"], nonce=query["nonce"],
                               redirect_uri=query["redirect_uri"], id_token=token, claims=claims,
                               response=response)
        return response

    def post_launch(self, client: httpx.Client | str, id_token: str, state: str) -> httpx.Response:
        """Post an id_token and state to the tool's launch URL (a replay, say)."""
        return _client(client).post("/lti/launch", data={"id_token": id_token, "state": state})

    # -- the auth endpoint (browsers) -----------------------------------------------------------

    def _auth_page(self, query: dict[str, str]) -> tuple[int, str]:
        expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
                    "prompt": "none", "client_id": self.client_id}
        wrong = [k for k, v in expected.items() if query.get(k) != v]
        if wrong or not query.get("redirect_uri") or not query.get("nonce") or not query.get("state"):
            return 400, f"bad authentication request: {wrong or 'missing redirect_uri, nonce or state'}"
        hint = query.get("login_hint", "")
        spec = self.specs.get(hint, LaunchSpec())
        claims = self.claims(query["nonce"], sub=hint or "learner-1", role=spec.role, context=spec.context,
                             locale=spec.locale, message_type=spec.message_type, name=spec.name,
                             target_link_uri=query["redirect_uri"])
        if spec.tamper is not None:
            claims = spec.tamper(claims) or claims
        token = self.sign(claims)
        return 200, _auto_post(query["redirect_uri"], {"id_token": token, "state": query["state"]})

    def _course_page(self, query: dict[str, str]) -> str:
        tool = query.get("tool", "").rstrip("/")
        fields = {"iss": self.issuer, "login_hint": query.get("hint", "learner-1"),
                  "target_link_uri": f"{tool}/lti/launch", "client_id": self.client_id,
                  "lti_deployment_id": self.deployment_id, "lti_message_hint": "course-page"}
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v, quote=True)}">'
                         for k, v in fields.items())
        return ("<!doctype html><html><head><meta charset='utf-8'><title>Algebra I · Simulated LMS</title>"
                "</head><body><h1>Algebra I</h1><p>Week 3: quadratic equations.</p>"
                f'<form id="launch" method="post" action="{html.escape(tool)}/lti/login" target="tool">'
                f"{inputs}</form>"
                '<iframe name="tool" id="tool" title="Course assistant" width="900" height="640" '
                'allow="clipboard-write"></iframe>'
                '<script>document.getElementById("launch").submit();</script></body></html>')


def _client(client: httpx.Client | str) -> httpx.Client:
    return client if isinstance(client, httpx.Client) else httpx.Client(base_url=client, timeout=30)


def _auto_post(url: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v, quote=True)}">'
                     for k, v in fields.items())
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Signing in…</title></head><body>"
            f'<form id="f" method="post" action="{html.escape(url, quote=True)}">{inputs}</form>'
            '<script>document.getElementById("f").submit();</script></body></html>')


def _handler(platform: SimulatedPlatform) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: str, media: str = "text/html; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the tool gave up waiting (a slow key set, on purpose)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/jwks":
                platform.jwks_fetches += 1
                if platform.jwks_delay_s:
                    time.sleep(platform.jwks_delay_s)
                self._send(200, json.dumps(platform.jwks()), "application/json")
            elif parts.path == "/auth":
                self._send(*platform._auth_page(query))
            elif parts.path == "/course":
                self._send(200, platform._course_page(query))
            else:
                self._send(404, "not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            if urlsplit(self.path).path == "/deep_link_return":
                platform.deep_link_returns.append({k: v[0] for k, v in parse_qs(body).items()})
                self._send(200, "<!doctype html><p>Content item received.</p>")
            else:
                self._send(404, "not found", "text/plain")

    return Handler
