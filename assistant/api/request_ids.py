"""Request ids: every HTTP request gets one, every log line written for it carries it.

``RequestIds`` takes the caller's ``X-Request-ID`` (when it is a plain token of at most 128
characters; anything else could forge log lines) or makes one, sets it in
``assistant.logs.request_id`` for the request's duration, returns it in the ``X-Request-ID``
response header, and logs one access line (method, path, status, duration) with it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.logs import request_id

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("assistant.api.access")


def incoming_id(scope: Scope) -> str:
    """The caller's request id when it is usable, else a new one."""
    for name, value in scope.get("headers") or []:
        if name == b"x-request-id":
            given = value.decode("latin-1").strip()
            if _VALID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info("%s %s %d %.1f ms", scope.get("method", ""), scope.get("path", ""),
                            status, (time.perf_counter() - started) * 1000)
            request_id.reset(token)
