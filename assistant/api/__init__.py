"""The developer API: routers for uploads, chat (SSE), conversations, tools, the
OpenAI-compatible endpoint and metrics, plus keys, scopes and one error shape.

``install_api(app, runtime)`` adds all of it to a FastAPI app; ``assistant.server`` composes
it with the MCP endpoint and the UI.
"""

from __future__ import annotations

from fastapi import FastAPI

from assistant.api import chat, conversations, metrics, openai_compat, tools, uploads
from assistant.api.auth import require
from assistant.api.billing import install_billing
from assistant.api.errors import error_body, install_error_handlers
from assistant.api.metrics import Metrics, MetricsMiddleware
from assistant.runtime import Runtime
from assistant.security import KeyStore, RateLimiter


def install_api(app: FastAPI, runtime: Runtime) -> Metrics:
    app.state.runtime = runtime
    app.state.keys = KeyStore(runtime.db)
    app.state.limiter = RateLimiter(runtime.settings.api.rate_limit_per_minute)
    app.state.metrics = Metrics()
    app.state.tool_runner = tools.ToolRunner()
    install_error_handlers(app)
    for module in (uploads, chat, conversations, tools, openai_compat, metrics):
        app.include_router(module.router)
    install_billing(app, runtime)  # widget, usage, quotas, audit
    runtime.plugin_manager.hook.register_routes(app=app, runtime=runtime)  # plugins' routers
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app.state.metrics


__all__ = ["Metrics", "error_body", "install_api", "install_error_handlers", "require"]
