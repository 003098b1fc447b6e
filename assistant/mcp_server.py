"""The tool registry as an MCP server (MCP Python SDK 2.x, low-level ``Server``).

Two transports: streamable HTTP at ``/mcp`` inside the FastAPI app (API key with the
``tools`` scope required; the key's tenant is the tools' tenant), and stdio for desktop MCP
clients (``mentorly mcp``; the tenant is a command-line option, since stdio has no key).

Tool failures come back as ``is_error`` results whose text is the error's own message
(a ``ToolError``'s sentence, the schema problem, the unknown name), not the SDK's generic
"Error executing tool". Unexpected exceptions are logged and reported generically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from assistant.api.auth import authenticate_request, check_scope
from assistant.api.errors import mentorly_error_response
from assistant.caller import Caller
from assistant.errors import MentorlyError
from assistant.runtime import Runtime
from assistant.security import TOOLS, KeyStore, Principal, RateLimiter
from assistant.tooling import ToolResult

log = logging.getLogger(__name__)
PRINCIPAL_KEY = "mentorly_principal"


def _text_of(tool_name: str, result: ToolResult) -> str:
    data = json.dumps(result.data, ensure_ascii=False, default=str)
    return f"{result.summary}\n{data}" if result.summary else data


def _structured(result: ToolResult) -> dict[str, Any]:
    return json.loads(json.dumps({"data": result.data, "summary": result.summary,
                                  "provenance": result.provenance(),
                                  "sources": [s.to_dict() for s in result.sources]}, default=str))


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def build_mcp_server(runtime: Runtime, *, default_tenant: str | None = None,
                     on_tool_call: Callable[[str, bool], None] | None = None) -> Server[Any]:
    """An MCP server over ``runtime.registry``. ``default_tenant`` serves requests that carry
    no authenticated principal (stdio); HTTP requests always carry one (see ``McpEndpoint``).

    Calls go through ``runtime.tool_calls`` (quotas and metering: the runtime's usage hooks);
    ``on_tool_call(name, ok)`` runs after each call of a known tool (metrics)."""

    def principal_of(ctx: Any) -> Principal:
        request = getattr(ctx, "request", None)
        principal = request.scope.get("state", {}).get(PRINCIPAL_KEY) if request is not None else None
        if isinstance(principal, Principal):
            return principal
        if default_tenant is None:
            raise PermissionError("no authenticated principal for this MCP request")
        return Principal(tenant=default_tenant, scopes=(TOOLS,))

    async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
            for t in runtime.registry])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        principal = principal_of(ctx)
        caller = Caller.mcp(principal.tenant, principal.key_prefix)
        name = params.name
        ok = False
        try:
            result = await runtime.tool_calls.acall(name, dict(params.arguments or {}), caller)
            ok = True
        except MentorlyError as exc:  # a ToolError, bad arguments, an unknown tool, a timeout
            return _error(exc.message)
        except Exception:
            log.exception("MCP tool %s raised", name)
            return _error(f"{name} failed with an internal error; the server log has the details")
        finally:
            if on_tool_call is not None and name in runtime.registry:
                on_tool_call(name, ok)
        return types.CallToolResult(content=[types.TextContent(text=_text_of(name, result))],
                                    structured_content=_structured(result))

    return Server("mentorly", version="0.1.0", instructions="Mentorly's tools: " + ", ".join(
        runtime.registry.names()), on_list_tools=list_tools, on_call_tool=call_tool)


class McpEndpoint:
    """ASGI app for ``/mcp``: checks the key (``tools`` scope, rate limit), then hands the
    request to the SDK's streamable-HTTP transport with the principal in ``scope["state"]``."""

    def __init__(self, runtime: Runtime, keys: KeyStore, limiter: RateLimiter,
                 on_tool_call: Callable[[str, bool], None] | None = None) -> None:
        self.server = build_mcp_server(runtime, on_tool_call=on_tool_call)
        host, port = runtime.settings.server.host, runtime.settings.server.port
        hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", f"{host}:{port}",
                 *runtime.settings.api.mcp_allowed_hosts]
        origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*",
                   *runtime.settings.server.cors_origins]
        self.session_manager = StreamableHTTPSessionManager(
            app=self.server, json_response=True, stateless=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                                        allowed_hosts=hosts, allowed_origins=origins))
        self._transport = StreamableHTTPASGIApp(self.session_manager)
        self._keys = keys
        self._limiter = limiter

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = await authenticate_request(Headers(scope=scope).get("authorization"), self._keys,
                                                   self._limiter)
            check_scope(principal, TOOLS)
        except MentorlyError as exc:
            await mentorly_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self._transport(scope, receive, send)


async def serve_stdio(runtime: Runtime, tenant: str) -> None:
    """Serve the registry over stdin/stdout until the client closes (``mentorly mcp``)."""
    from mcp.server.stdio import stdio_server

    server = build_mcp_server(runtime, default_tenant=tenant)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
