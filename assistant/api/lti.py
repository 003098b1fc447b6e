"""LTI 1.3 launch routes: ``/lti/login`` (OIDC login initiation, GET and POST), ``/lti/launch``
(the platform's form post of the ``id_token``) and ``/lti/deep-link`` (an instructor's choice,
answered with a signed content item). The pages' templates come from the folder the
composition root names (``lti_pages``): ``page.html`` (the launched chat), ``deep_link.html``
(the instructor's picker form) and ``error.html`` (every refusal).

These are browser form posts from the platform, inside its iframe, so every answer is an HTML
page, never the API's JSON error: a refusal says why and what to do, in the learner's language
when the launch names it. The checks themselves are ``assistant.lti.launch``; each route does
its database work in one worker thread.

Anyone may call these routes, so each first passes the flood guard (``assistant.lti.flood``):
over ``[lti] requests_per_minute_per_ip`` a client address gets a 429 page with ``Retry-After``
before its request is read, and the flood writes no state and (but for one row per address
and minute) no audit rows."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant import audit
from assistant.api.lti_admin import tool_keys
from assistant.errors import ConfigError, MentorlyError, NotFound, RateLimited, Unauthorized
from assistant.lti.deep_linking import (
    AUTO_POST_POLICY,
    DeepLinkAnswer,
    auto_post_page,
    build_answer,
    default_title,
)
from assistant.lti.flood import FloodGuard
from assistant.lti.launch import (
    DEEP_LINKING_REQUEST,
    REASONS,
    Launched,
    Launcher,
    LaunchRefused,
    VerifiedLaunch,
    origin_of,
    record_refusal,
)
from assistant.lti.platforms import PlatformInfo
from assistant.lti.sessions import LtiSessions, SessionInfo
from assistant.lti.urls import tool_urls
from assistant.metering import Meter
from assistant.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["lti"])
MAX_FORM = 256 * 1024  # an id_token with a platform's custom claims fits many times over
MAX_FIELDS = 32
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

_FALLBACK_ERROR = ("<!doctype html><html lang=\"{{lang}}\"><head><meta charset=\"utf-8\"><title>{{title}}"
                   "</title></head><body><h1>{{title}}</h1><p>{{reason}}</p><p>{{action}}</p>"
                   "<p><small>{{code_label}}: {{code}}</small></p></body></html>")
_TEXTS = {
    "en": {"code_label": "Reason code", "config_title": "Mentorly is not set up completely",
           "config_action": "Ask the administrator of this Mentorly server to check its installation.",
           "heading": "Add Mentorly to this course", "intro": "Learners will get the course assistant "
           "with this course's documents. Choose how the link appears in the course:",
           "title_label": "Title", "text_label": "Description", "button": "Add to course",
           "default_text": "Ask questions about this course's documents."},
    "zh": {"code_label": "原因代码", "config_title": "Mentorly 尚未完全配置",
           "config_action": "请联系此 Mentorly 服务器的管理员检查安装。",
           "heading": "将 Mentorly 添加到本课程", "intro": "学生将获得可以查阅本课程文档的课程助手。"
           "请设置链接在课程中的显示方式：", "title_label": "标题", "text_label": "说明",
           "button": "添加到课程", "default_text": "就本课程的文档提问。"},
}
# the flood guard's page: (title, reason, action); {limit} and {seconds} are filled in
_BUSY = {
    "en": ("Too many requests from your network",
           "More than {limit} requests to open this tool came from your network address in the last minute.",
           "Wait {seconds} seconds, then open the tool again from your course."),
    "zh": ("来自您网络的请求过多",
           "过去一分钟内，来自您网络地址的打开本工具的请求超过 {limit} 次。",
           "请等待 {seconds} 秒，然后从课程中重新打开本工具。"),
}


def install_lti(app: FastAPI, runtime: Runtime, *, pages: Path | None = None) -> None:
    """The LTI routes and what they share on ``app.state``: ``lti_sessions``, ``lti_pages``,
    ``lti_launcher`` (whose platform key sets are cached for the app's life) and ``lti_flood``
    (the per-address limit of the anonymous routes, counted where every replica sees it)."""
    app.state.lti_sessions = LtiSessions(runtime.db, runtime.settings.lti.session_ttl_s)
    app.state.lti_pages = pages
    app.state.lti_launcher = Launcher(runtime.db, runtime.settings)
    app.state.lti_flood = FloodGuard.build(runtime.settings.lti.requests_per_minute_per_ip, db=runtime.db,
                                           redis_url=runtime.settings.redis_url)
    app.include_router(router)


# -- templates ----------------------------------------------------------------------------


_templates: dict[Path, tuple[int, str]] = {}


def load_template(folder: Path | None, name: str) -> str:
    """A page template, read again when the file changes; ``ConfigError`` naming the file
    when it is missing."""
    if folder is None:
        raise ConfigError(f"the LTI pages are not installed (no folder for {name}): "
                          "run Mentorly through `mentorly serve`")
    path = folder / name
    try:
        mtime = path.stat().st_mtime_ns
        cached = _templates.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(f"the LTI page template {path} is missing from the installation") from None
    _templates[path] = (mtime, text)
    return text


def render(template: str, values: Mapping[str, str]) -> str:
    """``{{name}}`` → the HTML-escaped value (an unknown name → empty)."""
    return _PLACEHOLDER.sub(lambda m: html.escape(str(values.get(m.group(1), "")), quote=True), template)


# What each page may run: the chat page only the tool's own scripts (widget.js, course.js);
# the picker form none, and it posts only back here; the deep-linking answer its one inline line.
CHAT_POLICY = "script-src 'self'; object-src 'none'; base-uri 'none'"
PICKER_POLICY = "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
ERROR_POLICY = "script-src 'none'; object-src 'none'; base-uri 'none'"


def page_headers(origins: tuple[str, ...] | None, policy: str) -> dict[str, str]:
    """``Cache-Control``, ``Referrer-Policy`` and the CSP: a launched page may be framed by its
    platform only (``frame-ancestors``; no X-Frame-Options, which cannot name an origin). Error
    pages (``origins`` None) say nothing secret and must show inside any platform's iframe."""
    if origins is None:
        return {**PAGE_HEADERS, "Content-Security-Policy": policy}
    ancestors = " ".join(["'self'", *origins])
    return {**PAGE_HEADERS, "Content-Security-Policy": f"frame-ancestors {ancestors}; {policy}"}


def error_page(request: Request, exc: MentorlyError, *, locale: str | None = None) -> HTMLResponse:
    """The page of a refusal (``LaunchRefused``), the flood guard's 429 (``RateLimited``, with
    ``Retry-After``) or a configuration error."""
    lang = locale or _accept_language(request)
    texts = _TEXTS[lang]
    headers = page_headers(None, ERROR_POLICY)
    reason_text = exc.localized(lang)
    if isinstance(exc, LaunchRefused):
        reason = exc.reason
        title = reason.title_zh if lang == "zh" else reason.title
        action = reason.action_zh if lang == "zh" else reason.action
        code, status = exc.code, exc.status_code
    elif isinstance(exc, RateLimited):
        flood: FloodGuard = request.app.state.lti_flood
        title, reason_text, action = (text.format(limit=flood.per_minute, seconds=exc.retry_after_s)
                                      for text in _BUSY[lang])
        code, status = exc.error_type, exc.status_code
        headers["Retry-After"] = str(exc.retry_after_s)
    else:
        title, action = texts["config_title"], texts["config_action"]
        code, status = exc.error_type, exc.status_code
    try:
        template = load_template(request.app.state.lti_pages, "error.html")
    except ConfigError:
        template = _FALLBACK_ERROR
    body = render(template, {"lang": lang, "title": title, "reason": reason_text, "action": action,
                             "code": code, "code_label": texts["code_label"]})
    return HTMLResponse(body, status_code=status, headers=headers)


def _accept_language(request: Request) -> str:
    first = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


# -- request parameters -------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """A browser form post's fields (the first of each name), read up to ``MAX_FORM`` bytes."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM:
        raise _too_large()
    if media == "multipart/form-data":
        try:
            form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FORM)
        except Exception:  # starlette raises its own errors for a malformed or oversized body
            raise LaunchRefused("bad_request", "The request's form could not be read.",
                                "无法读取请求的表单。") from None
        return _first((k, v) for k, v in form.multi_items() if isinstance(v, str))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise _too_large()
    if media not in ("", "application/x-www-form-urlencoded"):
        return {}
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise LaunchRefused("bad_request", "The request's form has too many fields.",
                            "请求的表单字段过多。") from None
    return _first(pairs)


def _first(pairs: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


def _too_large() -> LaunchRefused:
    return LaunchRefused("too_large", f"The request is larger than {MAX_FORM // 1024} KB.",
                         f"请求超过 {MAX_FORM // 1024} KB。")


def _launcher(request: Request) -> Launcher:
    launcher: Launcher = request.app.state.lti_launcher
    return launcher


async def _flooded(request: Request, step: str) -> Response | None:
    """The 429 page when the client's address is over its limit (nothing else is done for it)."""
    guard: FloodGuard = request.app.state.lti_flood
    refused = await guard.admit(request.client.host if request.client else None, step)
    return error_page(request, refused) if refused is not None else None


async def _refused_request(request: Request, exc: LaunchRefused, step: str) -> Response:
    """A refusal found before the launcher saw the request (an oversized body): audited here."""
    await anyio.to_thread.run_sync(lambda: record_refusal(_launcher(request).db, exc, step=step))
    return error_page(request, exc)


# -- 1. login initiation ------------------------------------------------------------------


@router.api_route("/lti/login", methods=["GET", "POST"], include_in_schema=False)
async def lti_login(request: Request) -> Response:
    """OIDC third-party initiated login: store state and nonce, send the browser to the
    platform's auth endpoint (which posts the id_token to ``/lti/launch``)."""
    if (busy := await _flooded(request, "login")) is not None:
        return busy
    params = dict(request.query_params)
    if request.method == "POST":
        try:
            params.update(await _form(request))
        except LaunchRefused as exc:
            return await _refused_request(request, exc, "login")
    try:
        redirect = await anyio.to_thread.run_sync(_launcher(request).login, params)
    except LaunchRefused as exc:
        return error_page(request, exc)
    return RedirectResponse(redirect.url, status_code=302, headers=dict(PAGE_HEADERS))


# -- 2. the launch -------------------------------------------------------------------------


@router.post("/lti/launch", include_in_schema=False)
async def lti_launch(request: Request) -> Response:
    """The platform's form post: verify, then the chat page (a resource link) or the
    instructor's placement form (a deep-linking request)."""
    if (busy := await _flooded(request, "launch")) is not None:
        return busy
    try:
        form = await _form(request)
    except LaunchRefused as exc:
        return await _refused_request(request, exc, "launch")
    app = request.app
    try:
        page, launched = await anyio.to_thread.run_sync(_launch, app, form.get("id_token", ""),
                                                        form.get("state", ""))
    except LaunchRefused as exc:
        return error_page(request, exc, locale=exc.locale)
    except ConfigError as exc:
        log.error("LTI launch: %s", exc.message)
        return error_page(request, exc)
    launch = launched.launch
    policy = PICKER_POLICY if launch.message_type == DEEP_LINKING_REQUEST else CHAT_POLICY
    return HTMLResponse(render(page, _page_values(launched)),
                        headers=page_headers(launch.frame_origins, policy))


@router.get("/lti/launch", include_in_schema=False)
async def lti_launch_opened(request: Request) -> Response:
    """Someone opened the launch URL directly (a bookmark, a reload of a redirect)."""
    if (busy := await _flooded(request, "launch")) is not None:
        return busy
    exc = LaunchRefused("bad_request", "This address is opened by your learning platform when you "
                        "open the tool from a course, not directly.",
                        "此地址由学习平台在您从课程中打开本工具时使用，不能直接访问。")
    return await _refused_request(request, exc, "launch")


def _launch(app: FastAPI, id_token: str, state: str) -> tuple[str, Launched]:
    """Verify (a refusal is audited there), find the page's template (a missing one is the
    operator's error, found before anything is written), then open the session."""
    launcher: Launcher = app.state.lti_launcher
    launch = launcher.verify(id_token, state)
    name = "deep_link.html" if launch.message_type == DEEP_LINKING_REQUEST else "page.html"
    page = load_template(app.state.lti_pages, name)
    meter: Meter = getattr(app.state, "meter", None) or Meter(launcher.db)
    return page, launcher.open(launch, app.state.lti_sessions, meter)


def _page_values(launched: Launched) -> dict[str, str]:
    launch: VerifiedLaunch = launched.launch
    course_title = launched.course.title if launched.course else ""
    texts = _TEXTS[launch.locale]
    return {"lang": launch.locale, "title": default_title(course_title), "session": launched.session,
            "course_title": course_title, "user_name": launch.name,
            "role": "instructor" if launch.instructor else "learner",
            "collection": launched.course.collection if launched.course else "",
            "action": "/lti/deep-link", **{k: v for k, v in texts.items() if not k.startswith("config")}}


# -- 3. deep linking -----------------------------------------------------------------------


@router.post("/lti/deep-link", include_in_schema=False)
async def lti_deep_link(request: Request) -> Response:
    """The instructor's placement: a signed ``LtiDeepLinkingResponse``, posted by the browser to
    the return URL the signed launch named (never one from this form)."""
    if (busy := await _flooded(request, "deep_link")) is not None:
        return busy
    try:
        form = await _form(request)
    except LaunchRefused as exc:
        return await _refused_request(request, exc, "deep_link")
    try:
        session, platform, answer = await anyio.to_thread.run_sync(
            _deep_link, request.app, form.get("session", ""), form.get("title", ""), form.get("text", ""))
    except LaunchRefused as exc:
        return error_page(request, exc, locale=exc.locale)
    except ConfigError as exc:
        log.error("LTI deep linking: %s", exc.message)
        return error_page(request, exc)
    return HTMLResponse(auto_post_page(answer, lang=session.locale),
                        headers=page_headers(_origins(platform, session), AUTO_POST_POLICY))


def _origins(platform: PlatformInfo, session: SessionInfo) -> tuple[str, ...]:
    extra = origin_of((session.deep_link or {}).get("deep_link_return_url"))
    return tuple(dict.fromkeys([*platform.origins, *([extra] if extra else [])]))


def _deep_link(app: FastAPI, token: str, title: str,
               text: str) -> tuple[SessionInfo, PlatformInfo, DeepLinkAnswer]:
    launcher: Launcher = app.state.lti_launcher
    sessions: LtiSessions = app.state.lti_sessions
    session: SessionInfo | None = None
    platform: PlatformInfo | None = None
    try:
        try:
            session = sessions.verify(token)
        except Unauthorized as exc:
            raise LaunchRefused("session", exc.message,
                                "此页面的会话已失效，请从课程中重新打开本工具。") from None
        try:
            platform = launcher.platforms.get(session.platform_id)
        except NotFound:
            raise LaunchRefused("unknown_platform", "The platform this page was launched from is no "
                                "longer registered.", "启动此页面的平台已不再注册。") from None
        answer = build_answer(session, platform, title=title, text=text,
                              launch_url=tool_urls(launcher.settings).launch, sign=tool_keys(app).sign)
    except LaunchRefused as exc:
        exc.platform = platform
        if platform is not None:
            exc.claimed = {"issuer": platform.issuer, "client_id": platform.client_id,
                           "deployment": session.deployment_id if session else "",
                           "message_type": session.message_type if session else ""}
        exc.locale = session.locale if session else None
        record_refusal(launcher.db, exc, step="deep_link")
        raise
    sessions.end(token)  # one answer per picker launch
    audit.record(launcher.db, actor=f"lti:{platform.id}", action=audit.LTI_DEEP_LINK, target=session.user,
                 tenant=platform.tenant,
                 details={"issuer": platform.issuer, "client_id": platform.client_id,
                          "deployment": session.deployment_id, "course": session.collection or "",
                          "title": _item_title(answer.claims)})
    return session, platform, answer


def _item_title(claims: dict[str, Any]) -> str:
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items") or [{}]
    return str(items[0].get("title", ""))


__all__ = ["REASONS", "error_page", "install_lti", "load_template", "render", "router"]
