"""CORS headers on every answer of the widget's endpoints, errors included.

The widget runs on other sites' pages: a response without ``Access-Control-Allow-Origin`` is
hidden from it, and the learner sees "network error" instead of the reason. The routes add the
header themselves; ``WidgetCors`` adds it to whatever else answers on ``/widget/api/`` (request
validation, the body guard, 413s from dependencies). A 500 from the unexpected-error handler is
sent by Starlette's outermost ``ServerErrorMiddleware``, past every middleware, so that handler
adds the headers itself with ``error_cors_headers``.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WIDGET_API = "/widget/api/"


def widget_cors(path: str, origin: str | None) -> dict[str, str]:
    """The widget's CORS headers: the calling origin, echoed (the key's allowlist is checked
    before any work; a refusal must still be readable to show why)."""
    if origin and path.startswith(WIDGET_API):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def error_cors_headers(request: Request) -> dict[str, str]:
    """What ``CORSMiddleware`` or ``WidgetCors`` would have added, for a response sent outside
    them (the 500 handler)."""
    origin = request.headers.get("origin")
    headers = widget_cors(request.url.path, origin)
    if headers or not origin:
        return headers
    runtime: Any = getattr(request.app.state, "runtime", None)
    allowed = list(runtime.settings.server.cors_origins) if runtime is not None else []
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin in allowed else {}


class WidgetCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(WIDGET_API):
            await self.app(scope, receive, send)
            return
        extra = widget_cors(scope["path"], Headers(scope=scope).get("origin"))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                headers = MutableHeaders(scope=message)
                if "access-control-allow-origin" not in headers:
                    headers.update(extra)
            await send(message)

        await self.app(scope, receive, send_with_cors)
