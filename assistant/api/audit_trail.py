"""Audits administrative API operations without touching their routers: after a successful
response, an operation named in ``AUDITED`` (by its ``operation_id``) is written to the audit
log with the calling key as actor, its tenant, and the path as target."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant import audit

AUDITED: dict[str, str] = {
    "upload_knowledge_document": audit.DOCUMENT_UPLOADED,
    "delete_knowledge_document": audit.DOCUMENT_DELETED,
    "import_catalog": audit.CATALOG_IMPORTED,
}


class AuditMiddleware:
    def __init__(self, app: ASGIApp, db: Any) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, capture)
        route = scope.get("route")
        action = AUDITED.get(getattr(route, "operation_id", None) or "")
        principal = (scope.get("state") or {}).get("principal")
        if action is None or not 200 <= status < 300 or principal is None:
            return
        params = {k: str(v) for k, v in (scope.get("path_params") or {}).items()}
        await anyio.to_thread.run_sync(lambda: audit.record(
            self.db, actor=audit.key_actor(principal.key_prefix), action=action, target=scope.get("path", ""),
            tenant=principal.tenant, details=params))
