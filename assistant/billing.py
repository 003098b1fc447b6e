"""Metering and quotas as the runtime's one usage observer (``install_metering``).

Registered once per runtime on ``Runtime.usage_hooks``, whichever surface asks first (the HTTP
app, the LangChain adapter): every surface's tool calls and every turn then reach the same
``Meter`` and ``Quotas``. What it stores is what each surface always stored: a direct HTTP call
is a ``tool`` row for ``key:<prefix>``, an MCP call an ``mcp`` row for ``mcp:<prefix>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.caller import Caller
from assistant.metering import Meter
from assistant.quotas import Quotas
from assistant.tooling import Tool
from assistant.usage_hooks import ToolCallRecord

if TYPE_CHECKING:
    from assistant.agent import TurnRecord
    from assistant.runtime import Runtime

USAGE_SURFACE = {"api": "tool"}
"""The ``usage.surface`` of a direct call, where it differs from the caller's surface (the
HTTP API's turns are ``api`` rows; its direct tool calls have always been ``tool`` rows)."""


class Billing:
    """Quotas before a call, a usage row after a successful one and after every finished turn.

    A turn's own tool step (surface ``agent``) is neither admitted nor billed on its own: the
    turn was admitted at its edge and its row counts the tool call."""

    def __init__(self, meter: Meter, quotas: Quotas) -> None:
        self.meter = meter
        self.quotas = quotas

    @property
    def blocking_admit(self) -> bool:
        return self.quotas.needs_database

    def admit(self, caller: Caller, tool: Tool) -> None:
        if caller.surface != "agent":
            self.quotas.check(tenant=caller.tenant, user=caller.user, key=caller.key_prefix or "")

    def tool_called(self, record: ToolCallRecord) -> None:
        caller = record.caller
        if not record.ok or caller.surface == "agent":
            return
        self.meter.record(tenant=caller.tenant, user=caller.user, key=caller.key_prefix or "",
                          tool=record.tool, surface=USAGE_SURFACE.get(caller.surface, caller.surface),
                          tool_calls=1, image_megapixels=record.image_pixels / 1e6,
                          compute_ms=record.elapsed_ms)

    def turn_finished(self, record: TurnRecord) -> None:
        self.meter.observe(record)


def install_metering(runtime: Runtime) -> Billing:
    """The runtime's ``Billing``, registered on its usage hooks on the first call only: two
    registrations would count everything twice."""
    billing = runtime.usage_hooks.find(Billing)
    if billing is None:
        meter = Meter(runtime.db)
        billing = Billing(meter, Quotas(runtime.settings.quotas, meter,
                                        redis_url=runtime.settings.redis_url))
        runtime.usage_hooks.register(billing)
    return billing
