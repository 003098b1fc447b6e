"""``Authorization: Bearer <key>`` on every ``/api`` and ``/v1`` operation, with a scope each.

``require(scope)`` is a FastAPI dependency returning the caller's ``Principal``; other issues'
routers (knowledge, catalog) use it the same way: ``Depends(require(KNOWLEDGE))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.errors import Forbidden, Unauthorized
from assistant.runtime import Runtime
from assistant.security import CHAT, TOOLS, KeyStore, Principal, RateLimiter

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `mentorly keys create` (shown once).")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def authenticate_header(authorization: str | None, keys: KeyStore, limiter: RateLimiter) -> Principal:
    """The principal for a raw ``Authorization`` header value (used by the MCP mount too)."""
    if not authorization:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <key>'")
    principal = keys.authenticate(token.strip())
    limiter.check(principal.key_id or principal.tenant)
    return principal


def check_scope(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise Forbidden(f"this API key lacks the {scope!r} scope (it has: {', '.join(principal.scopes)})")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def require(scope: str) -> Callable[..., Principal]:
    """A dependency: a valid, unrevoked key with ``scope`` (or ``admin``), within its rate limit."""

    def dependency(request: Request, credentials: Credentials) -> Principal:
        # ``credentials`` only documents the scheme in OpenAPI; the raw header gives better errors.
        principal = authenticate_header(request.headers.get("authorization"), request.app.state.keys,
                                        request.app.state.limiter)
        check_scope(principal, scope)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ChatKey = Annotated[Principal, Depends(require(CHAT))]
ToolsKey = Annotated[Principal, Depends(require(TOOLS))]
