"""LTI Advantage Deep Linking 2.0: the instructor's answer to the platform's "add external tool"
picker, an ``LtiDeepLinkingResponse`` JWT signed with the tool's key, carrying one
``ltiResourceLink`` to the tool's launch URL, posted by the browser to the platform.

Everything that decides where the answer goes and for whom comes from the signed launch (the
session's ``deep_link`` settings, deployment, roles); the form adds only the title and text."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.lti.launch import (
    DEEP_LINKING_REQUEST,
    DEPLOYMENT_ID,
    LTI_VERSION,
    MESSAGE_TYPE,
    VERSION,
    LaunchRefused,
)
from assistant.lti.platforms import PlatformInfo
from assistant.lti.sessions import SessionInfo

DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CONTENT_ITEMS = DL_CLAIM + "content_items"
DATA = DL_CLAIM + "data"
RESPONSE_TTL_S = 300
MAX_TITLE = 200
MAX_TEXT = 1000
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # newlines and tabs stay in the text


@dataclass(frozen=True)
class DeepLinkAnswer:
    return_url: str
    jwt: str
    claims: dict[str, Any]


def default_title(course_title: str) -> str:
    return f"Mentorly — {course_title}" if course_title else "Mentorly"


def check_session(session: SessionInfo) -> dict[str, Any]:
    """The deep-linking settings of an instructor's deep-linking session, else a refusal."""
    settings = session.deep_link or {}
    return_url = settings.get("deep_link_return_url")
    if session.message_type != DEEP_LINKING_REQUEST or not isinstance(return_url, str):
        raise LaunchRefused("session", "This page was not opened from the platform's \"add external tool\" "
                            "picker.", "此页面不是从平台的“添加外部工具”选择器打开的。")
    if not session.instructor:
        raise LaunchRefused("not_instructor", "Only an instructor of the course can add the assistant to it.",
                            "只有本课程的教师可以把助手添加到课程中。")
    return settings


def response_claims(session: SessionInfo, platform: PlatformInfo, *, title: str, text: str,
                    launch_url: str, now: float | None = None) -> dict[str, Any]:
    """The ``LtiDeepLinkingResponse`` claims (Deep Linking 2.0, section 4.2)."""
    settings = check_session(session)
    issued = int(now if now is not None else time.time())
    item: dict[str, Any] = {"type": "ltiResourceLink", "url": launch_url,
                            "title": _clean(title, MAX_TITLE) or default_title(session.course.title
                                                                                if session.course else "")}
    if text := _clean(text, MAX_TEXT):
        item["text"] = text
    claims: dict[str, Any] = {
        "iss": platform.client_id, "aud": platform.issuer, "iat": issued, "exp": issued + RESPONSE_TTL_S,
        "nonce": secrets.token_urlsafe(24), DEPLOYMENT_ID: session.deployment_id,
        MESSAGE_TYPE: "LtiDeepLinkingResponse", VERSION: LTI_VERSION, CONTENT_ITEMS: [item]}
    if isinstance(settings.get("data"), str):  # opaque to the tool: echoed as it came
        claims[DATA] = settings["data"]
    return claims


def build_answer(session: SessionInfo, platform: PlatformInfo, *, title: str, text: str, launch_url: str,
                 sign: Callable[[dict[str, Any]], str]) -> DeepLinkAnswer:
    claims = response_claims(session, platform, title=title, text=text, launch_url=launch_url)
    return DeepLinkAnswer(return_url=str((session.deep_link or {})["deep_link_return_url"]), jwt=sign(claims),
                          claims=claims)


AUTO_POST_SCRIPT = 'document.getElementById("dl").submit();'
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(AUTO_POST_SCRIPT.encode()).digest()).decode()
AUTO_POST_POLICY = f"script-src 'sha256-{_SCRIPT_HASH}'; object-src 'none'; base-uri 'none'"
"""The answer page's CSP: its one inline script, by hash."""


def auto_post_page(answer: DeepLinkAnswer, *, lang: str = "en") -> str:
    """A page that posts ``JWT`` to the platform's return URL as soon as it loads (a button
    does the same without JavaScript)."""
    wait, button = ("正在返回学习平台…", "继续") if lang == "zh" else ("Returning to your learning platform…",
                                                                  "Continue")
    return ("<!doctype html>\n"
            f'<html lang="{html.escape(lang)}"><head><meta charset="utf-8"><title>Mentorly</title></head>'
            f"<body><p>{html.escape(wait)}</p>"
            f'<form id="dl" method="post" action="{html.escape(answer.return_url, quote=True)}">'
            f'<input type="hidden" name="JWT" value="{html.escape(answer.jwt, quote=True)}">'
            f'<noscript><button type="submit">{html.escape(button)}</button></noscript></form>'
            f"<script>{AUTO_POST_SCRIPT}</script></body></html>\n")


def _clean(value: str, limit: int) -> str:
    return _CONTROL_RE.sub("", value).strip()[:limit] if isinstance(value, str) else ""
