"""Admission before a turn runs: quotas per key and per user, and the usage attribution
(which key, which surface) that the metering observer reads."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from assistant.api.errors import error_body
from assistant.events import Event
from assistant.metering import current_course, current_key, current_surface
from assistant.quotas import QuotaExceeded, Quotas


async def run_check(quotas: Quotas, *, tenant: str, user: str, key: str) -> None:
    """Check quotas in a worker thread when that does I/O (daily limits read the usage table,
    per-minute limits count in the database or Redis); with no limit set, inline."""
    if quotas.needs_database:
        await anyio.to_thread.run_sync(lambda: quotas.check(tenant=tenant, user=user, key=key))
    else:
        quotas.check(tenant=tenant, user=user, key=key)


async def admit(request: Request, *, tenant: str, user: str | None, key: str, surface: str,
                course: str = "") -> None:
    """Raise ``QuotaExceeded`` (429) if this turn must not run; else attribute its usage."""
    quotas: Quotas = request.app.state.quotas
    await run_check(quotas, tenant=tenant, user=user or "anonymous", key=key)
    current_key.set(key)
    current_surface.set(surface)
    current_course.set(course)


def attributed(gen: Generator[Event, None, None], key: str, surface: str,
               course: str = "") -> Generator[Event, None, None]:
    """The agent's events, with the usage attribution set on every resumption (each ``next``
    may run in a different worker thread, with its own context)."""
    try:
        while True:
            tokens = current_key.set(key), current_surface.set(surface), current_course.set(course)
            try:
                event = next(gen)
            except StopIteration:
                return
            finally:
                current_key.reset(tokens[0])
                current_surface.reset(tokens[1])
                current_course.reset(tokens[2])
            yield event
    finally:
        gen.close()


def quota_response(exc: QuotaExceeded, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = error_body(exc.error_type, exc.message)
    body["error"]["reset_at"] = exc.reset_at.isoformat()
    body["error"]["retry_after_s"] = exc.retry_after_s
    headers = {**(headers or {}), "Retry-After": str(exc.retry_after_s)}
    return JSONResponse(body, status_code=429, headers=headers)


def install_quota_handler(app: FastAPI) -> None:
    @app.exception_handler(QuotaExceeded)
    async def _quota(_request: Request, exc: QuotaExceeded) -> JSONResponse:
        return quota_response(exc)
