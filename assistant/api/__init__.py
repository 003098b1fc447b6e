"""The developer API: routers for uploads, chat (SSE), conversations, tools, the
OpenAI-compatible endpoint and metrics, plus keys, scopes and one error shape.

``install_api(app, runtime)`` adds all of it to a FastAPI app; ``assistant.server`` composes
it with the MCP endpoint, and the composition root (``mentorly_app``) adds the UI.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from assistant.api import (
    chat,
    conversations,
    lti_admin,
    lti_course,
    metrics,
    openai_compat,
    tools,
    uploads,
    widget,
)
from assistant.api.auth import require
from assistant.api.billing import install_billing
from assistant.api.body_guard import BodyGuard
from assistant.api.cors import WidgetCors
from assistant.api.errors import error_body, install_error_handlers
from assistant.api.lti import install_lti
from assistant.api.metrics import Metrics, MetricsMiddleware
from assistant.api.request_ids import RequestIds
from assistant.api.widget import MAX_BODY as WIDGET_MAX_BODY
from assistant.api.widget_static import static_router
from assistant.runtime import Runtime
from assistant.security import KeyStore, make_limiter


def install_api(app: FastAPI, runtime: Runtime, *, widget_static: Path | None = None,
                lti_pages: Path | None = None) -> Metrics:
    """Everything under ``/api``, ``/v1``, ``/metrics`` and ``/widget``; the widget's static files
    (``/widget.js``...) only when the composition root names their folder, ``widget_static``;
    the LTI routes (``/lti``), whose pages come from ``lti_pages``."""
    app.state.runtime = runtime
    app.state.keys = KeyStore(runtime.db)
    # one budget per key across /api, /v1 and /mcp (the MCP endpoint gets this limiter too),
    # counted in the database or Redis so every replica sees the same counts
    app.state.limiter = make_limiter(runtime.settings.api.rate_limit_per_minute, db=runtime.db,
                                     redis_url=runtime.settings.redis_url, scope="api")
    app.state.metrics = Metrics()
    app.state.metrics.watch_turns(lambda: runtime.turn_gate.state())
    app.state.tool_runner = tools.ToolRunner()
    install_error_handlers(app)
    for module in (uploads, chat, conversations, tools, openai_compat, metrics):
        app.include_router(module.router)
    install_billing(app, runtime)  # usage, quotas, audit
    app.include_router(widget.router)
    install_lti(app, runtime, pages=lti_pages)
    app.include_router(lti_admin.router)
    app.include_router(lti_course.router)
    if widget_static is not None:
        app.include_router(static_router(widget_static))
    runtime.plugin_manager.hook.register_routes(app=app, runtime=runtime)  # plugins' routers
    upload_bytes = runtime.settings.uploads.max_bytes
    app.add_middleware(BodyGuard, json_limit=json_body_limit(upload_bytes), widget_limit=WIDGET_MAX_BODY,
                       upload_limits={"/api/uploads": upload_bytes, "/widget/api/uploads": upload_bytes})
    app.add_middleware(WidgetCors)  # outside the guard: its refusals reach the widget too
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIds)  # outermost here: every response above carries its id
    return app.state.metrics


def json_body_limit(upload_bytes: int) -> int:
    """The largest JSON body accepted: 32 MiB (a 20 MiB catalog fits), or more when
    ``/v1/chat/completions`` may carry 8 images of ``upload_bytes`` each as base64."""
    return max(32 * 1024 * 1024, 8 * 4 * -(-upload_bytes // 3) + 1024 * 1024)


__all__ = ["Metrics", "error_body", "install_api", "install_error_handlers", "require"]
