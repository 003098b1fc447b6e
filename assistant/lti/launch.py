"""OIDC login initiation and the LTI 1.3 launch: what a platform sends, checked the way the IMS
Security Framework and LTI Core 1.3 say, then turned into a Mentorly user, course and session.

The flow (the platform's browser form posts, nothing else):

1. ``login``: the platform names itself (``iss``, ``client_id``) and the user (``login_hint``);
   the tool stores a random ``state`` and ``nonce`` (``lti_states``, server side: no cookie,
   since the tool runs in a cross-site iframe) and redirects to the platform's auth endpoint.
2. ``verify``: the platform posts ``id_token`` and ``state`` back. The state is consumed by one
   ``DELETE … RETURNING`` (a second post of it finds nothing: no replay), then the id_token is
   checked: RS256 only, signed by a key of the platform's JWKS (``PlatformKeySets``), ``iss``,
   ``aud``/``azp``, ``exp``/``iat``, the state's ``nonce``, a registered deployment, a message
   type this tool handles, LTI version 1.3.0, a ``sub``.
3. ``open``: the user ``lti:<platform id[:8]>:<sub>`` of the platform's tenant, the course's
   collection, an ``LtiSession`` (the page's bearer token), an audit row and a usage row.

Every refusal is a ``LaunchRefused`` with a reason code, recorded in the audit log
(``lti.launch_refused``) before it is raised; the routes (``assistant.api.lti``) render it.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from sqlalchemy import delete, select

from assistant import audit
from assistant.audit import as_utc
from assistant.config import LtiSettings, Settings
from assistant.errors import MentorlyError, NotFound
from assistant.lti.courses import CourseInfo, ensure_course
from assistant.lti.platforms import PlatformInfo, Platforms
from assistant.lti.sessions import LtiSessions
from assistant.lti.urls import tool_urls
from assistant.metering import Meter
from assistant.storage import Database
from assistant.storage.lti import LtiState
from assistant.storage.models import _now

log = logging.getLogger(__name__)

LTI_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI_CLAIM + "message_type"
VERSION = LTI_CLAIM + "version"
DEPLOYMENT_ID = LTI_CLAIM + "deployment_id"
RESOURCE_LINK = LTI_CLAIM + "resource_link"
ROLES = LTI_CLAIM + "roles"
CONTEXT = LTI_CLAIM + "context"
LAUNCH_PRESENTATION = LTI_CLAIM + "launch_presentation"
TARGET_LINK_URI = LTI_CLAIM + "target_link_uri"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
HANDLED_MESSAGES = frozenset({RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST})
LTI_VERSION = "1.3.0"

_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
# Who may manage the course's documents and place the tool (deep linking). Instructors, content
# developers and teaching assistants teach the course (the TA is a sub-role of Instructor, sent
# both ways by platforms); institution and system administrators can manage every course on the
# platform anyway. Not included: Mentor (an observer of one learner: a parent, an advisor; Canvas
# "Observer"), institution Faculty/Instructor (faculty *somewhere*, possibly a learner in this
# course) and context Administrator/Manager (platforms give it to support staff, not teachers).
INSTRUCTOR_ROLES = frozenset({
    f"{_MEMBERSHIP}#Instructor", f"{_MEMBERSHIP}#ContentDeveloper", f"{_MEMBERSHIP}#TeachingAssistant",
    f"{_MEMBERSHIP}/Instructor#TeachingAssistant", f"{_MEMBERSHIP}/Instructor#Lecturer",
    f"{_MEMBERSHIP}/Instructor#PrimaryInstructor", f"{_MEMBERSHIP}/Instructor#SecondaryInstructor",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin",
    # LTI 1.3 lets platforms send context roles by their simple names
    "Instructor", "ContentDeveloper", "TeachingAssistant",
})

MAX_ID_TOKEN = 64 * 1024
_SUB_MAX = 150
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_STATE_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
JWKS_TIMEOUT_S = 5.0
JWKS_COOLDOWN_S = 10.0  # an unknown kid refetches the set at most this often (forged kids)
PURGE_EVERY = 64  # logins between deletions of long-expired states


@dataclass(frozen=True)
class Reason:
    """How a refusal reads: its status, a title and what the reader can do, in both languages."""

    status: int
    title: str
    action: str
    title_zh: str
    action_zh: str


_OPEN_AGAIN = ("Open the tool again from your course.", "请从课程中重新打开本工具。")
_ADMIN = ("Ask your platform administrator to check the tool's registration "
          "(mentorly lti list / mentorly lti config).",
          "请联系平台管理员检查本工具的注册信息（mentorly lti list / mentorly lti config）。")
_ADMIN_KEYS = ("If it happens again, ask your platform administrator to check the platform's key set URL.",
               "如果再次发生，请联系平台管理员检查平台的公钥地址。")

REASONS: dict[str, Reason] = {
    "bad_request": Reason(400, "This launch request is incomplete", _ADMIN[0],
                          "启动请求不完整", _ADMIN[1]),
    "unknown_platform": Reason(403, "This learning platform is not registered", _ADMIN[0],
                               "此学习平台尚未注册", _ADMIN[1]),
    "wrong_target": Reason(400, "This launch is for another address", _ADMIN[0],
                           "启动地址不正确", _ADMIN[1]),
    "unknown_deployment": Reason(403, "This deployment is not registered", _ADMIN[0],
                                 "此部署尚未注册", _ADMIN[1]),
    "state": Reason(401, "This launch cannot be used", _OPEN_AGAIN[0],
                    "无法使用此次启动", _OPEN_AGAIN[1]),
    "state_expired": Reason(401, "This launch has expired", _OPEN_AGAIN[0],
                            "此次启动已过期", _OPEN_AGAIN[1]),
    "bad_token": Reason(401, "The launch is not a valid signed token", _ADMIN[0],
                        "启动令牌无效", _ADMIN[1]),
    "bad_alg": Reason(401, "The launch is not signed the way LTI 1.3 requires", _ADMIN[0],
                      "启动令牌的签名方式不符合 LTI 1.3", _ADMIN[1]),
    "keys_unavailable": Reason(502, "The platform's keys could not be fetched",
                               "Try again in a minute. " + _ADMIN_KEYS[0],
                               "无法获取平台的公钥", "请稍后再试。" + _ADMIN_KEYS[1]),
    "unknown_key": Reason(401, "The launch was signed with an unknown key", _ADMIN_KEYS[0],
                          "启动令牌使用了未知的密钥签名", _ADMIN_KEYS[1]),
    "bad_signature": Reason(401, "The launch's signature is not valid", _ADMIN_KEYS[0],
                            "启动令牌的签名无效", _ADMIN_KEYS[1]),
    "wrong_issuer": Reason(401, "The launch came from another platform", _ADMIN[0],
                           "启动来自其他平台", _ADMIN[1]),
    "wrong_audience": Reason(401, "The launch was meant for another tool", _ADMIN[0],
                             "启动的目标是其他工具", _ADMIN[1]),
    "expired": Reason(401, "This launch has expired",
                      _OPEN_AGAIN[0] + " If it happens again, the platform's or this server's clock is off.",
                      "此次启动已过期", _OPEN_AGAIN[1] + "如果再次发生，可能是平台或本服务器的时钟不准。"),
    "missing_claim": Reason(401, "The launch is missing required information", _ADMIN[0],
                            "启动缺少必要的信息", _ADMIN[1]),
    "nonce": Reason(401, "This launch does not belong to this sign-in", _OPEN_AGAIN[0],
                    "此次启动与登录不匹配", _OPEN_AGAIN[1]),
    "wrong_version": Reason(400, "This LTI version is not supported", _ADMIN[0],
                            "不支持此 LTI 版本", _ADMIN[1]),
    "message_type": Reason(400, "This kind of launch is not supported",
                           "Use the tool's course link or the \"add external tool\" picker instead.",
                           "不支持此类启动", "请改用课程中的工具链接，或“添加外部工具”选择器。"),
    "anonymous": Reason(400, "This launch does not say who you are",
                        "Ask your platform administrator to share the user's identity with this tool.",
                        "此次启动未提供用户身份", "请联系平台管理员，允许向本工具提供用户身份。"),
    "not_instructor": Reason(403, "Only instructors can do this",
                             "Ask an instructor of the course to add the assistant.",
                             "只有教师可以执行此操作", "请联系课程教师添加助手。"),
    "session": Reason(401, "This page's session is no longer valid", _OPEN_AGAIN[0],
                      "此页面的会话已失效", _OPEN_AGAIN[1]),
    "too_large": Reason(413, "This launch request is too large", _ADMIN[0],
                        "启动请求过大", _ADMIN[1]),
}


class LaunchRefused(MentorlyError):
    """A login or launch this tool will not accept. ``code`` names the reason (``REASONS``, and
    the audit row's ``details.reason``); ``message``/``zh`` is the one sentence saying why."""

    error_type = "lti_launch_refused"

    def __init__(self, code: str, message: str, zh: str | None = None, *, detail: str = "") -> None:
        super().__init__(message, zh=zh)
        self.code = code
        self.reason = REASONS[code]
        self.status_code = self.reason.status
        self.detail = detail  # technical detail for the administrator (PyJWT's message, say)
        self.platform: PlatformInfo | None = None
        self.claimed: dict[str, str] = {}  # issuer, client_id, deployment, message type as sent
        self.locale: str | None = None  # from the unverified launch, for the page's language

    def audit_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"reason": self.code, "message": self.message,
                                   "issuer": self.claimed.get("issuer", ""),
                                   "client_id": self.claimed.get("client_id", ""),
                                   "deployment": self.claimed.get("deployment", ""),
                                   "message_type": self.claimed.get("message_type", "")}
        if self.detail:
            details["detail"] = self.detail[:500]
        return details

    @property
    def actor(self) -> str:
        if self.platform is not None:
            return f"lti:{self.platform.id}"
        return f"lti:{self.claimed.get('issuer') or 'unknown'}"[:200]


@dataclass(frozen=True)
class LoginRedirect:
    url: str
    platform: PlatformInfo


@dataclass(frozen=True)
class VerifiedLaunch:
    """What the signed id_token says, checked; nothing here came from anywhere else."""

    platform: PlatformInfo
    message_type: str
    deployment_id: str
    sub: str
    name: str
    roles: tuple[str, ...]
    instructor: bool
    locale: str
    context_id: str | None
    context_title: str
    resource_link_id: str
    deep_link: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    return_origin: str | None = None
    """The origin of the signed ``launch_presentation.return_url``: where the platform's pages
    are (Canvas's issuer is canvas.instructure.com, its pages school.instructure.com)."""

    @property
    def frame_origins(self) -> tuple[str, ...]:
        """Who may frame the launched page: the platform's registered origins and the return
        URL's, both from the platform (the registration, the signed launch)."""
        extra = [self.return_origin, origin_of((self.deep_link or {}).get("deep_link_return_url"))]
        return tuple(dict.fromkeys([*self.platform.origins, *(o for o in extra if o)]))

    @property
    def user(self) -> str:
        """The Mentorly user id: stable across launches of this platform, distinct from others'."""
        return f"lti:{self.platform.id[:8]}:{self.sub}"


@dataclass(frozen=True)
class Launched:
    launch: VerifiedLaunch
    session: str
    course: CourseInfo | None


@dataclass(frozen=True)
class PendingLogin:
    nonce: str
    platform_id: str
    expired: bool


def page_locale(value: Any) -> str:
    """``launch_presentation.locale`` (``zh-CN``, ``zh_TW``, ``en-US``…) → ``"zh"`` or ``"en"``."""
    return "zh" if isinstance(value, str) and value.strip().lower().startswith("zh") else "en"


def origin_of(url: Any) -> str | None:
    """``https://School.example:443/path`` → ``https://school.example``; None for anything but
    an http(s) URL (an origin goes into a CSP header: nothing else may)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or not re.fullmatch(r"[a-z0-9.:\[\]-]+", host or "-"):
        return None
    if ":" in host:
        host = f"[{host}]"
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _clean(value: Any, limit: int) -> str:
    return _CONTROL_RE.sub("", value).strip()[:limit] if isinstance(value, str) else ""


def same_url(a: str, b: str) -> bool:
    """Scheme, host, port and path equal (host case and default ports ignored; query ignored)."""
    try:
        pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
        ports = [p.port or {"http": 80, "https": 443}.get(p.scheme.lower(), 0) for p in (pa, pb)]
    except ValueError:
        return False
    return (pa.scheme.lower() == pb.scheme.lower() and (pa.hostname or "") == (pb.hostname or "")
            and ports[0] == ports[1] and (pa.path or "/") == (pb.path or "/"))


class PlatformKeySets:
    """One ``PyJWKClient`` per platform (and key set URL): the set is cached
    ``jwks_cache_s`` and fetched again when a token names a kid it lacks (at most every
    ``JWKS_COOLDOWN_S``, so forged kids cannot make the tool hammer the platform). Fetches block:
    callers run in a worker thread, and each fetch has a timeout."""

    def __init__(self, settings: LtiSettings) -> None:
        self.settings = settings
        self.timeout_s = JWKS_TIMEOUT_S
        self.cooldown_s = JWKS_COOLDOWN_S
        self._clients: dict[tuple[str, str], jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every cached key set (the next launch of each platform fetches its set)."""
        with self._lock:
            self._clients = {}

    def client(self, platform: PlatformInfo) -> jwt.PyJWKClient:
        key = (platform.id, platform.key_set_url)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                cache_s = self.settings.jwks_cache_s
                found = jwt.PyJWKClient(platform.key_set_url, cache_jwk_set=cache_s > 0,
                                        lifespan=max(cache_s, 1), timeout=self.timeout_s,
                                        cooldown_duration=self.cooldown_s,
                                        headers={"User-Agent": "Mentorly-LTI"})
                self._clients = {k: v for k, v in self._clients.items() if k[0] != platform.id}
                self._clients[key] = found
            return found

    def signing_key(self, platform: PlatformInfo, kid: str) -> Any:
        try:
            return self.client(platform).get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as exc:
            raise LaunchRefused("keys_unavailable", "Mentorly could not fetch the platform's public "
                                "keys to check this launch.", "Mentorly 无法获取平台的公钥来验证此次启动。",
                                detail=f"{platform.key_set_url}: {exc}") from None
        except jwt.PyJWKClientError as exc:
            raise LaunchRefused("unknown_key", "The launch was signed with a key the platform does not "
                                "publish.", "启动令牌使用的密钥不在平台公布的密钥中。",
                                detail=f"kid {kid!r}: {exc}") from None
        except jwt.PyJWKError as exc:
            raise LaunchRefused("keys_unavailable", "The platform's key set could not be read.",
                                "无法读取平台的公钥。", detail=f"{platform.key_set_url}: {exc}") from None


class Launcher:
    """Login initiation and launch verification for one app (its JWKS clients are shared)."""

    def __init__(self, db: Database, settings: Settings, platforms: Platforms | None = None) -> None:
        self.db = db
        self.settings = settings
        self.platforms = platforms or Platforms(db)
        self.key_sets = PlatformKeySets(settings.lti)
        self._logins = 0

    # -- 1. login initiation ---------------------------------------------------------------

    def login(self, params: Mapping[str, str]) -> LoginRedirect:
        """The redirect to the platform's auth endpoint; a refusal is audited, then raised."""
        try:
            return self._login(params)
        except LaunchRefused as exc:
            self._audit_refusal(exc, step="login")
            raise

    def _login(self, params: Mapping[str, str]) -> LoginRedirect:
        issuer, hint = params.get("iss", "").strip(), params.get("login_hint", "")
        target, client_id = params.get("target_link_uri", "").strip(), params.get("client_id", "").strip()
        deployment = params.get("lti_deployment_id", "").strip()
        claimed = {"issuer": issuer[:500], "client_id": client_id[:255], "deployment": deployment[:255]}
        platform: PlatformInfo | None = None
        try:
            platform = self.platforms.find(issuer, client_id or None) if issuer else None
            required = (("iss", issuer), ("login_hint", hint), ("target_link_uri", target))
            missing = [n for n, v in required if not v]
            if missing:
                raise LaunchRefused("bad_request", f"The platform's login request is missing "
                                    f"{', '.join(missing)}.", f"平台的登录请求缺少 {', '.join(missing)}。")
            if platform is None:
                raise LaunchRefused("unknown_platform", "This learning platform (issuer and client id) "
                                    "is not registered with Mentorly.",
                                    "此学习平台（issuer 与 client id）尚未在 Mentorly 中注册。",
                                    detail=f"issuer {issuer!r}, client_id {client_id!r}")
            urls = tool_urls(self.settings)
            if not same_url(target, urls.launch):
                raise LaunchRefused("wrong_target", "The platform asked to launch an address that is not "
                                    "this tool's launch URL.", "平台请求启动的地址不是本工具的启动地址。",
                                    detail=f"target_link_uri {target[:300]!r}, expected {urls.launch!r}")
            if deployment and deployment not in platform.deployment_ids:
                raise LaunchRefused("unknown_deployment", "This deployment of the tool is not registered "
                                    "for the platform.", "本工具的此部署尚未为该平台注册。",
                                    detail=f"deployment {deployment!r}")
        except LaunchRefused as exc:
            if platform is not None:
                exc.platform = platform
                claimed["client_id"] = platform.client_id
            exc.claimed = claimed
            raise
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with self.db.session() as s:
            self._logins += 1
            if self._logins % PURGE_EVERY == 1:  # expired states stay a while: "expired", not "unknown"
                grace = timedelta(seconds=self.settings.lti.state_ttl_s)
                s.execute(delete(LtiState).where(LtiState.expires_at < now - grace))
            s.add(LtiState(state=state, nonce=nonce, platform_id=platform.id, target_link_uri=target[:1000],
                           created_at=now, expires_at=now + timedelta(seconds=self.settings.lti.state_ttl_s)))
        query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
                 "prompt": "none", "client_id": platform.client_id, "redirect_uri": urls.launch,
                 "login_hint": hint, "state": state, "nonce": nonce}
        if params.get("lti_message_hint"):
            query["lti_message_hint"] = params["lti_message_hint"]
        separator = "&" if "?" in platform.auth_login_url else "?"
        return LoginRedirect(platform.auth_login_url + separator + urlencode(query), platform)

    # -- 2. the launch ---------------------------------------------------------------------

    def verify(self, id_token: str, state: str) -> VerifiedLaunch:
        """The checked launch; a refusal is audited, then raised (nothing else is written)."""
        try:
            return self._verify(id_token, state)
        except LaunchRefused as exc:
            self._audit_refusal(exc, step="launch")
            raise

    def _verify(self, id_token: str, state: str) -> VerifiedLaunch:
        header, unverified = _peek(id_token)
        claimed = _claimed(unverified)
        try:
            if not id_token or not state:
                raise LaunchRefused("bad_request", "The launch is missing its id_token or state.",
                                    "启动请求缺少 id_token 或 state。")
            if len(id_token) > MAX_ID_TOKEN:
                raise LaunchRefused("too_large", "The launch's id_token is too large.", "启动令牌过大。")
            pending = self._consume(state)
            if pending is None:
                raise LaunchRefused("state", "This launch was already used (reloading the page sends it "
                                    "again) or did not start at this tool's login.",
                                    "此次启动已被使用过（刷新页面会重新发送），或并非从本工具的登录开始。")
            platform = self._platform(pending.platform_id)
            if platform is None:
                raise LaunchRefused("unknown_platform", "The platform this launch started from is no "
                                    "longer registered.", "发起此次启动的平台已不再注册。")
            try:
                if pending.expired:
                    raise LaunchRefused("state_expired", "The launch arrived too long after its login "
                                        f"(more than {self.settings.lti.state_ttl_s} seconds).",
                                        "启动距离登录时间过久。")
                return self._check(platform, pending, id_token, header)
            except LaunchRefused as exc:
                exc.platform = platform
                raise
        except LaunchRefused as exc:
            exc.claimed = claimed
            exc.locale = page_locale(_dict(unverified.get(LAUNCH_PRESENTATION)).get("locale"))
            raise

    def _platform(self, platform_id: str) -> PlatformInfo | None:
        try:
            return self.platforms.get(platform_id)
        except NotFound:  # removed between the login and the launch
            return None

    def _consume(self, state: str) -> PendingLogin | None:
        """The state's login, deleted by one statement: of two launches presenting it, only one
        gets the row (``DELETE … RETURNING``; where the database lacks it, a read, then the
        ``DELETE`` whose row count decides). Expired states are consumed too."""
        if not _STATE_RE.match(state):
            return None
        columns = (LtiState.nonce, LtiState.platform_id, LtiState.expires_at)
        gone = delete(LtiState).where(LtiState.state == state)
        with self.db.session() as s:
            if s.get_bind().dialect.delete_returning:
                row = s.execute(gone.returning(*columns)).first()
            else:  # SQLite before 3.35
                row = s.execute(select(*columns).where(LtiState.state == state)).first()
                if row is not None and getattr(s.execute(gone), "rowcount", 0) != 1:
                    row = None  # another launch deleted it first
        if row is None:
            return None
        return PendingLogin(nonce=row[0], platform_id=row[1], expired=as_utc(row[2]) <= _now())

    def _check(self, platform: PlatformInfo, pending: PendingLogin, id_token: str,
               header: dict[str, Any]) -> VerifiedLaunch:
        if header.get("alg") != "RS256":
            raise LaunchRefused("bad_alg", "The launch must be signed with RS256; it was signed with "
                                f"{str(header.get('alg'))[:20]!r}.", "启动令牌必须使用 RS256 签名。",
                                detail=f"alg {header.get('alg')!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise LaunchRefused("unknown_key", "The launch does not name the key it was signed with (kid).",
                                "启动令牌未指明签名所用的密钥（kid）。")
        key = self.key_sets.signing_key(platform, kid)
        claims = _decode(id_token, key, platform, self.settings.lti.leeway_s)
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != platform.client_id:
            raise LaunchRefused("wrong_audience", "The launch names several audiences but not this tool "
                                "as the authorized party (azp).",
                                "启动令牌包含多个受众，但授权方（azp）不是本工具。",
                                detail=f"azp {claims.get('azp')!r}")
        if "azp" in claims and claims["azp"] != platform.client_id:
            raise LaunchRefused("wrong_audience", "The launch was authorized for another tool (azp).",
                                "启动令牌授权给了其他工具（azp）。", detail=f"azp {claims.get('azp')!r}")
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not secrets.compare_digest(nonce.encode(), pending.nonce.encode()):
            raise LaunchRefused("nonce", "This launch's nonce does not match its login: it may be a "
                                "replayed launch.", "此次启动的 nonce 与登录不匹配，可能是重放的启动。")
        deployment = claims.get(DEPLOYMENT_ID)
        if not isinstance(deployment, str) or deployment not in platform.deployment_ids:
            raise LaunchRefused("unknown_deployment", "This deployment of the tool is not registered for "
                                "the platform.", "本工具的此部署尚未为该平台注册。",
                                detail=f"deployment {str(deployment)[:255]!r}")
        version = claims.get(VERSION)
        if version != LTI_VERSION:
            raise LaunchRefused("wrong_version", f"This tool handles LTI {LTI_VERSION}; the launch says "
                                f"{str(version)[:20]!r}.", f"本工具仅支持 LTI {LTI_VERSION}。")
        message_type = claims.get(MESSAGE_TYPE)
        if message_type not in HANDLED_MESSAGES:
            shown = str(message_type)[:64] if message_type else "(none)"
            raise LaunchRefused("message_type", f"The message type {shown} is not handled by this tool.",
                                f"本工具不处理消息类型 {shown}。")
        return _launch(platform, claims, str(message_type), deployment)

    # -- 3. what an accepted launch opens ---------------------------------------------------

    def open(self, launch: VerifiedLaunch, sessions: LtiSessions, meter: Meter) -> Launched:
        """The user, course and session of a verified launch, with its audit and usage rows."""
        platform = launch.platform
        self.db.ensure_user(platform.tenant, launch.user, launch.name or None)
        course = None
        if launch.context_id:
            course = ensure_course(self.db, tenant=platform.tenant, platform_id=platform.id,
                                   context_id=launch.context_id, title=launch.context_title)
        token = sessions.open(tenant=platform.tenant, platform_id=platform.id, user=launch.user,
                              display_name=launch.name, roles=launch.roles, instructor=launch.instructor,
                              locale=launch.locale, message_type=launch.message_type,
                              deployment_id=launch.deployment_id, course=course, deep_link=launch.deep_link)
        collection = course.collection if course else ""
        audit.record(self.db, actor=f"lti:{platform.id}", action=audit.LTI_LAUNCH, target=launch.user,
                     tenant=platform.tenant,
                     details={"issuer": platform.issuer, "client_id": platform.client_id,
                              "deployment": launch.deployment_id, "message_type": launch.message_type,
                              "role": "instructor" if launch.instructor else "learner",
                              "context_id": launch.context_id or "", "course": collection})
        meter.record(tenant=platform.tenant, user=launch.user, key=f"lti:{platform.id}", surface="lti",
                     course=collection, launches=1)
        return Launched(launch=launch, session=token, course=course)

    def _audit_refusal(self, exc: LaunchRefused, *, step: str) -> None:
        log.info("LTI %s refused (%s): %s %s", step, exc.code, exc.message, exc.detail)
        audit.record(self.db, actor=exc.actor, action=audit.LTI_LAUNCH_REFUSED,
                     target=exc.claimed.get("issuer", "")[:500],
                     tenant=exc.platform.tenant if exc.platform else "",
                     details={**exc.audit_details(), "step": step})


def record_refusal(db: Database, exc: LaunchRefused, *, step: str) -> None:
    """The audit row of a refusal outside the launch itself (the deep-link form's)."""
    log.info("LTI %s refused (%s): %s %s", step, exc.code, exc.message, exc.detail)
    audit.record(db, actor=exc.actor, action=audit.LTI_LAUNCH_REFUSED, target=exc.claimed.get("issuer", ""),
                 tenant=exc.platform.tenant if exc.platform else "",
                 details={**exc.audit_details(), "step": step})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _peek(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims *unverified*: only for choosing checks, the page's language and the
    audit row's "claimed" fields, never for a decision."""
    try:
        header = jwt.get_unverified_header(id_token)
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return {}, {}
    return _dict(header), _dict(claims)


def _claimed(claims: dict[str, Any]) -> dict[str, str]:
    aud = claims.get("aud")
    client_id = aud if isinstance(aud, str) else claims.get("azp") if isinstance(claims.get("azp"), str) \
        else aud[0] if isinstance(aud, list) and aud and isinstance(aud[0], str) else ""
    values = {"issuer": claims.get("iss"), "client_id": client_id,
              "deployment": claims.get(DEPLOYMENT_ID), "message_type": claims.get(MESSAGE_TYPE)}
    return {k: _clean(v, 500) for k, v in values.items()}


def _decode(id_token: str, key: Any, platform: PlatformInfo, leeway: int) -> dict[str, Any]:
    """Signature, ``iss``, ``aud``, ``exp`` and ``iat`` by PyJWT; its errors become reasons."""
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token, key, algorithms=["RS256"], audience=platform.client_id, issuer=platform.issuer,
            leeway=leeway, options={"require": ["exp", "iat", "iss", "aud"]})
        return claims
    except jwt.InvalidSignatureError:
        raise LaunchRefused("bad_signature", "The launch's signature does not match the platform's key.",
                            "启动令牌的签名与平台的密钥不匹配。") from None
    except jwt.ExpiredSignatureError:
        raise LaunchRefused("expired", "The launch's id_token has expired.", "启动令牌已过期。") from None
    except jwt.ImmatureSignatureError:
        raise LaunchRefused("expired", "The launch's id_token is not valid yet (issued in the future).",
                            "启动令牌尚未生效（签发时间在未来）。") from None
    except jwt.InvalidIssuerError:
        raise LaunchRefused("wrong_issuer", "The launch's issuer is not the platform its login came from.",
                            "启动令牌的签发者不是发起登录的平台。") from None
    except jwt.InvalidAudienceError:
        raise LaunchRefused("wrong_audience", "The launch was meant for another tool (its audience is not "
                            "this tool's client id).", "启动令牌的受众不是本工具的 client id。") from None
    except jwt.MissingRequiredClaimError as exc:
        raise LaunchRefused("missing_claim", f"The launch's id_token lacks the {exc.claim!r} claim.",
                            f"启动令牌缺少 {exc.claim!r}。") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise LaunchRefused("bad_token", "The launch's id_token is not a valid signed token.",
                            "启动令牌不是有效的签名令牌。", detail=str(exc)[:300]) from None


def _launch(platform: PlatformInfo, claims: dict[str, Any], message_type: str,
            deployment: str) -> VerifiedLaunch:
    """The launch's user, roles, course and locale, from checked claims."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > _SUB_MAX or _CONTROL_RE.search(sub):
        raise LaunchRefused("anonymous", "The launch does not name the user (a short 'sub'), so Mentorly "
                            "cannot keep their history.", "此次启动未提供用户标识（sub），无法保存学习记录。")
    roles = tuple(r for r in claims.get(ROLES) or () if isinstance(r, str))[:50] \
        if isinstance(claims.get(ROLES), list) else ()
    instructor = any(r in INSTRUCTOR_ROLES for r in roles)
    deep_link: dict[str, Any] | None = None
    resource_link_id = ""
    if message_type == RESOURCE_LINK_REQUEST:
        resource_link_id = _clean(_dict(claims.get(RESOURCE_LINK)).get("id"), 255)
        if not resource_link_id:
            raise LaunchRefused("missing_claim", "The launch does not name its resource link "
                                "(resource_link.id).",
                                "启动令牌缺少资源链接标识（resource_link.id）。")
    else:
        deep_link = _deep_link_settings(claims)
        if not instructor:
            raise LaunchRefused("not_instructor", "Only an instructor of the course can add the assistant "
                                "to it.", "只有本课程的教师可以把助手添加到课程中。")
    context = _dict(claims.get(CONTEXT))
    context_id = _clean(context.get("id"), 255) or None
    presentation = _dict(claims.get(LAUNCH_PRESENTATION))
    name = _clean(claims.get("name"), 200) or " ".join(
        p for p in (_clean(claims.get("given_name"), 100), _clean(claims.get("family_name"), 100)) if p)
    return VerifiedLaunch(platform=platform, message_type=message_type, deployment_id=deployment,
                          sub=sub.strip(), name=name, roles=roles, instructor=instructor,
                          locale=page_locale(presentation.get("locale")),
                          return_origin=origin_of(presentation.get("return_url")),
                          context_id=context_id,
                          context_title=(_clean(context.get("title"), 300)
                                         or _clean(context.get("label"), 300)),
                          resource_link_id=resource_link_id, deep_link=deep_link)


def _deep_link_settings(claims: dict[str, Any]) -> dict[str, Any]:
    """The platform's ``deep_linking_settings``: a return URL (http or https, since the tool's page
    posts the answer there) and content types that include ``ltiResourceLink``."""
    settings = _dict(claims.get(DEEP_LINKING_SETTINGS))
    url = settings.get("deep_link_return_url")
    if not isinstance(url, str) or urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        raise LaunchRefused("missing_claim", "The deep-linking request has no usable return URL "
                            "(deep_link_return_url).",
                            "深度链接请求缺少可用的返回地址（deep_link_return_url）。")
    accept = settings.get("accept_types")
    if isinstance(accept, list) and "ltiResourceLink" not in accept:
        raise LaunchRefused("message_type", "The platform's picker does not accept a resource link, the "
                            "only content this tool offers.",
                            "平台的选择器不接受资源链接，而本工具只提供资源链接。")
    return settings
