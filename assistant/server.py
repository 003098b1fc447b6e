"""The web service's core: one FastAPI app with the developer API (``/api``, ``/v1``,
``/metrics``, ``/widget``), the MCP endpoint (``/mcp``) and the probes (``/healthz``: alive;
``/readyz``: ready for traffic, ``assistant.api.readiness``). The composition root
(``mentorly_app.web``) adds the chat UI at ``/ui`` and names the widget's static files.

Errors are mapped to HTTP in one place (``assistant.api.errors``), with one JSON shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.api import install_api
from assistant.api.auth import authenticate_request
from assistant.api.errors import error_body, install_error_handlers, mentorly_error_response
from assistant.api.readiness import install_readiness
from assistant.errors import MentorlyError
from assistant.mcp_server import McpEndpoint
from assistant.runtime import Runtime

__all__ = ["create_app", "error_body", "install_error_handlers"]

DESCRIPTION = """Mentorly's developer API. Every `/api` and `/v1` operation needs
`Authorization: Bearer <key>` (create one with `mentorly keys create --tenant T --scopes chat,tools`).
Errors have one shape: `{"error": {"type": ..., "message": ...}}`. MCP (streamable HTTP) is at `/mcp`."""


class UiKeyGuard:
    """With ``api.require_key_for_local_ui``: ``/ui`` needs a key too (Bearer header, or the
    ``mentorly_key`` cookie a browser can carry)."""

    def __init__(self, app: ASGIApp, prefix: str = "/ui") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        guarded = path == self.prefix or path.startswith(self.prefix + "/")
        if scope["type"] in ("http", "websocket") and guarded:
            from starlette.requests import HTTPConnection

            conn = HTTPConnection(scope)
            header = conn.headers.get("authorization")
            if header is None and conn.cookies.get("mentorly_key"):
                header = f"Bearer {conn.cookies['mentorly_key']}"
            state = conn.app.state if "app" in scope else None
            try:
                if state is None:
                    raise RuntimeError("UiKeyGuard must wrap the FastAPI app")
                await authenticate_request(header, state.keys, state.limiter)
            except MentorlyError as exc:
                if scope["type"] == "http":
                    await mentorly_error_response(exc)(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


def create_app(runtime: Runtime, *, widget_static: Path | None = None,
               lti_pages: Path | None = None) -> FastAPI:
    """The app without the UI; ``widget_static`` is the folder of ``widget.js`` and its kin,
    ``lti_pages`` that of the LTI pages' templates."""
    mcp: McpEndpoint | None = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        assert mcp is not None
        async with mcp.lifespan():  # the MCP session manager runs for the app's lifetime
            yield

    app = FastAPI(title="Mentorly", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    metrics = install_api(app, runtime, widget_static=widget_static, lti_pages=lti_pages)

    def mcp_called(name: str, ok: bool) -> None:  # quotas and metering: the runtime's usage hooks
        metrics.tool_call(name, ok, "mcp")

    mcp = McpEndpoint(runtime, app.state.keys, app.state.limiter, on_tool_call=mcp_called)
    # Starlette types add_route's endpoint as a request handler; an ASGI app (ours) works as well
    app.add_route("/mcp", mcp,  # type: ignore[arg-type]
                  methods=["GET", "POST", "DELETE"], include_in_schema=False)

    @app.get("/healthz", operation_id="health", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers (nothing else is checked; see ``/readyz``)."""
        return {"status": "ok", "tools": runtime.registry.names()}

    install_readiness(app)  # GET /readyz: database, schema, models, knowledge caches

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    # An explicit allowlist: without the app's own CORS middleware, Gradio would reflect any Origin.
    app.add_middleware(CORSMiddleware, allow_origins=runtime.settings.server.cors_origins,
                       allow_methods=["GET", "POST", "DELETE"], allow_headers=["*"])
    if runtime.settings.api.require_key_for_local_ui:
        app.add_middleware(UiKeyGuard)
    return app
