"""Wires metering, quotas, the audit log and the widget into the API (``install_billing``)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import FastAPI

from assistant import audit
from assistant.api import usage, widget
from assistant.api.audit_trail import AuditMiddleware
from assistant.api.limits import install_quota_handler, run_check
from assistant.api.tools import ToolRunner
from assistant.metering import Meter
from assistant.quotas import Quotas
from assistant.runtime import Runtime
from assistant.security.widget_tokens import WidgetKeys
from assistant.tooling import Tool, ToolContext, ToolResult


class MeteredToolRunner(ToolRunner):
    """Direct tool calls (``POST /api/tools/{name}``) record usage like turns do."""

    def __init__(self, meter: Meter, quotas: Quotas) -> None:
        super().__init__()
        self.meter = meter
        self.quotas = quotas

    async def run(self, tool: Tool, arguments: dict[str, Any], context: ToolContext,
                  timeout: float) -> ToolResult:
        key = context.user.removeprefix("key:") if context.user.startswith("key:") else ""
        await run_check(self.quotas, tenant=context.tenant, user=context.user, key=key)
        started = time.perf_counter()
        result = await super().run(tool, arguments, context, timeout)
        pixels = sum((f.width or 0) * (f.height or 0) for f in context.files)
        await anyio.to_thread.run_sync(lambda: self.meter.record(
            tenant=context.tenant, user=context.user, key=key, tool=tool.name, surface="tool",
            tool_calls=1, image_megapixels=pixels / 1e6,
            compute_ms=(time.perf_counter() - started) * 1000))
        return result


def install_billing(app: FastAPI, runtime: Runtime) -> None:
    existing = [o.__self__ for o in runtime.agent.observers
                if isinstance(getattr(o, "__self__", None), Meter)]
    meter = existing[0] if existing else Meter(runtime.db)  # one observer per runtime: never count twice
    app.state.meter = meter
    app.state.quotas = quotas = Quotas(runtime.settings.quotas, meter)
    app.state.widget_keys = WidgetKeys(runtime.db, runtime.settings.widget)
    app.state.tool_runner = MeteredToolRunner(meter, quotas)
    if not existing:
        runtime.agent.observers.append(meter.observe)
    install_quota_handler(app)
    for module in (widget, usage):
        app.include_router(module.router)
    app.add_middleware(AuditMiddleware, db=runtime.db)
    audit.record_settings_change(runtime.db, runtime.settings)
