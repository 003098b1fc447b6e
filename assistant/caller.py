"""Who a tool call is made for: a typed ``Caller``, built once at each surface.

The identity is never parsed back out of a string: the key, the widget learner and the surface
are fields. ``user`` is the name tools see (``ToolContext.user``) and usage rows store; the
constructors below keep the names each surface has always stored (``key:<prefix>`` for a direct
HTTP call, ``mcp:<prefix>`` or ``mcp:stdio`` for MCP), so existing usage reports read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Surface = Literal["agent", "api", "mcp", "cli", "langchain"]
"""Where a call came in: a turn's tool step (``agent``), ``POST /api/tools/{name}`` (``api``),
MCP over HTTP or stdio (``mcp``), ``mentorly tools call`` (``cli``) or the LangChain adapter."""


@dataclass(frozen=True)
class Caller:
    tenant: str
    user: str
    surface: Surface
    key_prefix: str | None = None
    """The API key the call was made with (its public prefix), when there is one."""
    learner: str | None = None
    """The widget learner a turn is made for, when it came through the widget."""

    @classmethod
    def api_key(cls, tenant: str, key_prefix: str | None) -> Caller:
        """A direct HTTP tool call made with an API key."""
        return cls(tenant=tenant, user=f"key:{key_prefix}", surface="api", key_prefix=key_prefix)

    @classmethod
    def mcp(cls, tenant: str, key_prefix: str | None) -> Caller:
        """An MCP call: over HTTP with a key, or over stdio (no key)."""
        return cls(tenant=tenant, user=f"mcp:{key_prefix or 'stdio'}", surface="mcp",
                   key_prefix=key_prefix or None)
