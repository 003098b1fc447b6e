"""The composition of the web service: FastAPI app with the chat UI mounted at ``/ui``.

The developer API (keys, OpenAI-compatible endpoint, MCP) grows here; errors are mapped
to HTTP in one place (``install_error_handlers``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse

from assistant.errors import MentorlyError, RateLimited
from assistant.runtime import Runtime


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MentorlyError)
    async def _mentorly_error(_request: Request, exc: MentorlyError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
        return JSONResponse(error_body(exc.error_type, exc.message), status_code=exc.status_code,
                            headers=headers)


def create_app(runtime: Runtime, *, with_ui: bool = True) -> FastAPI:
    app = FastAPI(title="Mentorly", version="0.1.0")
    app.state.runtime = runtime
    install_error_handlers(app)

    @app.get("/healthz", operation_id="health")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "tools": runtime.registry.names()}

    @app.get("/api/tools", operation_id="list_tools")
    def list_tools() -> list[dict[str, Any]]:
        return [t.describe() for t in runtime.registry]

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    # An explicit allowlist: without the app's own CORS middleware, Gradio would reflect any Origin.
    app.add_middleware(CORSMiddleware, allow_origins=runtime.settings.server.cors_origins,
                       allow_methods=["GET", "POST", "DELETE"], allow_headers=["*"])
    if with_ui:
        from ui.app import mount_ui

        app = mount_ui(app, runtime, path="/ui")
    return app
