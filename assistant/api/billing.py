"""Wires metering, quotas and the audit log into the API (``install_billing``)."""

from __future__ import annotations

from fastapi import FastAPI

from assistant import audit
from assistant.api import usage
from assistant.api.audit_trail import AuditMiddleware
from assistant.api.limits import install_quota_handler
from assistant.billing import install_metering
from assistant.runtime import Runtime
from assistant.security.widget_tokens import WidgetKeys


def install_billing(app: FastAPI, runtime: Runtime) -> None:
    # every surface's calls and turns reach the runtime's one Billing (registered once)
    app.state.billing = billing = install_metering(runtime)
    app.state.meter = billing.meter
    app.state.quotas = billing.quotas  # turns are admitted at their edge (``api.limits.admit``)
    app.state.widget_keys = WidgetKeys(runtime.db, runtime.settings.widget)
    install_quota_handler(app)
    app.include_router(usage.router)
    app.add_middleware(AuditMiddleware, db=runtime.db)
    audit.record_settings_change(runtime.db, runtime.settings)
