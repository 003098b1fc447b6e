"""``BodyGuard``: request bodies of ``/api``, ``/v1`` and the widget are checked before any
route parses them, so that no parser fails with a 500 or a vague message.

* JSON and JSON lines are read whole (up to a limit named in the 413), checked by
  ``assistant.api.bodies.check_json`` (depth, unpaired surrogates), then handed on unchanged.
  On the widget's endpoints every body but a multipart upload is JSON, whatever its
  Content-Type (the widget sends ``text/plain`` to avoid CORS preflights).
* Multipart uploads to the routes named in ``upload_limits`` are counted as they stream: a
  body without Content-Length (chunked) is stopped at the limit instead of being spooled whole.

Refusals have the API's one error shape; the widget's CORS headers are added further out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.bodies import check_json
from assistant.api.errors import mentorly_error_response
from assistant.errors import MentorlyError, PayloadTooLarge

GUARDED = ("/api/", "/v1/", "/widget/api/")
WIDGET = "/widget/api/"
JSON_LINES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines",
                        "application/jsonlines"})
UPLOAD_SLACK = 64 * 1024  # multipart boundaries and part headers around the file


def size_text(n: int) -> str:
    """``10.0 MB (10,485,760 bytes)``: megabytes alone round two different sizes to one."""
    return f"{n / (1024 * 1024):.1f} MB ({n:,} bytes)" if n >= 1024 * 1024 else f"{n:,} bytes"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while a route reads the body: FastAPI passes an
    ``HTTPException`` through its body parsing (anything else becomes a vague 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


def json_mode(path: str, media: str) -> str | None:
    """``"json"``, ``"lines"`` or ``None`` (not checked) for a body of this media type."""
    if media == "multipart/form-data":
        return None
    if path.startswith(WIDGET):
        return "json"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    return "lines" if media in JSON_LINES else None


class BodyGuard:
    def __init__(self, app: ASGIApp, json_limit: int, widget_limit: int,
                 upload_limits: Mapping[str, int]) -> None:
        self.app = app
        self.json_limit = json_limit
        self.widget_limit = widget_limit
        self.upload_limits = dict(upload_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH") \
                or not path.startswith(GUARDED):
            await self.app(scope, receive, send)
            return
        media = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        mode = json_mode(path, media)
        if mode is not None:
            await self._json(scope, receive, send, lines=mode == "lines")
        elif media == "multipart/form-data" and path in self.upload_limits:
            await self.app(scope, counted_receive(receive, self.upload_limits[path]), send)
        else:
            await self.app(scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send, *, lines: bool) -> None:
        limit = self.widget_limit if scope["path"].startswith(WIDGET) else self.json_limit
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(PayloadTooLarge(f"the request body exceeded the limit of "
                                                   f"{size_text(limit)}"), scope, receive, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        try:
            check_json(body, lines=lines)
        except MentorlyError as exc:
            await self._refuse(exc, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _refuse(exc: MentorlyError, scope: Scope, receive: Receive, send: Send) -> None:
        await mentorly_error_response(exc)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the real ``receive`` (a streaming response listens there for the
    client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def counted_receive(receive: Receive, limit: int,
                    too_large: Callable[[str], Exception] = BodyTooLarge) -> Receive:
    """``receive`` that raises ``too_large(message)`` once the body passes a file of ``limit``
    bytes plus the multipart slack, as it streams (a chunked upload is stopped there)."""
    total = 0

    async def counted() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit + UPLOAD_SLACK:
                raise too_large(f"the upload exceeded the limit of {size_text(limit)}")
        return message

    return counted
