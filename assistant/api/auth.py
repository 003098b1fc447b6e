"""``Authorization: Bearer <key>`` on every ``/api`` and ``/v1`` operation, with a scope each.

``require(scope)`` is a FastAPI dependency returning the caller's ``Principal``; other issues'
routers (knowledge, catalog) use it the same way: ``Depends(require(KNOWLEDGE))``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.errors import Forbidden, Unauthorized
from assistant.runtime import Runtime
from assistant.security import CHAT, TOOLS, KeyStore, Principal, RateLimiter

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `mentorly keys create` (shown once).")


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <key>'")
    return token.strip()


def authenticate_header(authorization: str | None, keys: KeyStore, limiter: RateLimiter) -> Principal:
    """The principal for a raw ``Authorization`` header value (may query the database)."""
    principal = keys.authenticate(bearer_token(authorization))
    limiter.check(principal.key_id or principal.tenant)
    return principal


async def authenticate_request(authorization: str | None, keys: KeyStore, limiter: RateLimiter) -> Principal:
    """As ``authenticate_header``, without blocking the event loop: a recently seen key costs
    only its revocation check (so a revoked key fails on its next request, whichever process
    revoked it), made here on SQLite; other keys and databases are looked up in a worker thread."""
    token = bearer_token(authorization)
    principal = keys.cached(token) if keys.cache_is_cheap else None
    if principal is None:
        principal = await anyio.to_thread.run_sync(keys.lookup, token)
    await limiter.acheck(principal.key_id or principal.tenant)
    return principal


def check_scope(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise Forbidden(f"this API key lacks the {scope!r} scope (it has: {', '.join(principal.scopes)})")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: a valid, unrevoked key with ``scope`` (or ``admin``), within its rate limit."""

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        # ``credentials`` only documents the scheme in OpenAPI; the raw header gives better errors.
        principal = await authenticate_request(request.headers.get("authorization"),
                                               request.app.state.keys, request.app.state.limiter)
        check_scope(principal, scope)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ChatKey = Annotated[Principal, Depends(require(CHAT))]
ToolsKey = Annotated[Principal, Depends(require(TOOLS))]
