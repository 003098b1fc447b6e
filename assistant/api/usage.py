"""``GET /api/usage`` (metered use, JSON or CSV) and ``GET /api/audit`` (the audit log), for
admin keys, over the key's own tenant."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from assistant import audit
from assistant.api.auth import RuntimeDep, require
from assistant.api.schemas import ERROR_RESPONSES
from assistant.metering import Meter, parse_time, to_csv
from assistant.security import ADMIN, Principal

router = APIRouter(tags=["usage"])
AdminKey = Annotated[Principal, Depends(require(ADMIN))]
# An action is at most 64 characters (the column), without control characters: PostgreSQL
# refuses a NUL in a query parameter outright (a 500), SQLite just finds nothing.
_ACTION = r"^[^\x00-\x1f\x7f]{1,64}$"
ActionFilter = Annotated[str | None, Query(pattern=_ACTION, description="only this action, e.g. key.created")]


@router.get("/api/usage", operation_id="usage", responses={**ERROR_RESPONSES, 200: {
    "description": "sums per group: JSON, or CSV with format=csv",
    "content": {"application/json": {}, "text/csv": {}}}})
async def usage(request: Request, principal: AdminKey,
                from_: Annotated[str | None, Query(alias="from", description="ISO date/time, UTC")] = None,
                to: Annotated[str | None, Query(description="ISO date/time (exclusive), UTC")] = None,
                group_by: Literal["tenant", "user", "tool", "course"] = "tenant",
                format: Literal["json", "csv"] = "json") -> Response:
    """Tokens, tool calls, image megapixels, embedded tokens and compute time per tenant, user or
    tool, over [from, to): the basis for pay-per-use billing."""
    meter: Meter = request.app.state.meter
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    rows = await anyio.to_thread.run_sync(
        lambda: meter.report(start=start, end=end, group_by=group_by, tenant=principal.tenant))
    if format == "csv":
        return PlainTextResponse(to_csv(rows, group_by), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="usage.csv"'})
    return JSONResponse({"tenant": principal.tenant, "group_by": group_by,
                         "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
                         "rows": [row.__dict__ for row in rows]})


@router.get("/api/audit", operation_id="audit_log", responses=ERROR_RESPONSES)
async def audit_log(principal: AdminKey, runtime: RuntimeDep,
                    action: ActionFilter = None,
                    limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    """Administrative actions on this tenant, newest first."""
    found = await anyio.to_thread.run_sync(
        lambda: audit.entries(runtime.db, tenant=principal.tenant, action=action, limit=limit))
    return {"entries": [e.to_dict() for e in found]}
