"""The one tool-call path: validation first, admission through the usage hooks, a timeout that
is a ``ToolTimeout``, and every admitted call reported, whichever surface made it."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from assistant import ToolContext, tool
from assistant.billing import Billing
from assistant.caller import Caller
from assistant.config import Settings, load_settings
from assistant.errors import InvalidInput, NotFound, RateLimited, ToolTimeout
from assistant.metering import Meter
from assistant.quotas import Quotas
from assistant.registry import ToolRegistry
from assistant.storage import Database
from assistant.tool_calls import ToolCaller
from assistant.tooling import Tool
from assistant.usage_hooks import ToolCallRecord, UsageHooks


@tool
def echo(text: str, context: ToolContext) -> dict[str, str]:
    """Return the text, the caller's user and the context's settings home."""
    return {"text": text, "user": context.user, "home": str(context.settings.home),
            "language": context.language}


@tool
def sleepy(seconds: float) -> float:
    """Sleep, then return how long."""
    time.sleep(seconds)
    return seconds


class Recorder:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.admitted: list[tuple[Caller, str]] = []
        self.calls: list[ToolCallRecord] = []

    @property
    def blocking_admit(self) -> bool:
        return False

    def admit(self, caller: Caller, tool: Tool) -> None:
        if self.refuse:
            raise RateLimited("no more today")
        self.admitted.append((caller, tool.name))

    def tool_called(self, record: ToolCallRecord) -> None:
        self.calls.append(record)

    def turn_finished(self, record: object) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path, plugins=[], tools={"timeout_s": 0.2})


def _caller(settings: Settings, observer: Recorder) -> ToolCaller:
    registry = ToolRegistry()
    registry.add(echo)
    registry.add(sleepy)
    hooks = UsageHooks()
    hooks.register(observer)
    return ToolCaller(registry, settings, hooks)


def test_a_call_is_validated_admitted_run_with_the_settings_and_reported(settings: Settings) -> None:
    seen = Recorder()
    calls = _caller(settings, seen)
    caller = Caller.api_key("acme", "mk_abc")
    result = calls.call("echo", {"text": "bonjour tout le monde"}, caller)
    assert result.data["user"] == "key:mk_abc" and result.data["home"] == str(settings.home)
    assert seen.admitted == [(caller, "echo")]
    (record,) = seen.calls
    assert record.ok and record.tool == "echo" and record.caller.key_prefix == "mk_abc"
    with pytest.raises(NotFound):
        calls.call("nothing", {}, caller)
    looked_up: list[int] = []
    with pytest.raises(InvalidInput):  # refused before the uploads are looked up
        calls.call("echo", {"text": 5}, caller, files=lambda: looked_up.append(1) or [])
    assert not looked_up and len(seen.calls) == 1  # refused calls were never admitted


def test_a_refusal_stops_the_call_and_a_timeout_is_a_tool_timeout(settings: Settings) -> None:
    refused = Recorder(refuse=True)
    with pytest.raises(RateLimited):
        _caller(settings, refused).call("sleepy", {"seconds": 0}, Caller("t", "u", "cli"))
    assert refused.calls == []
    seen = Recorder()
    calls = _caller(settings, seen)
    with pytest.raises(ToolTimeout, match="sleepy did not finish within 0.2 s"):
        calls.call("sleepy", {"seconds": 1.0}, Caller("t", "u", "cli"))

    async def too_slow() -> None:
        await calls.acall("sleepy", {"seconds": 1.0}, Caller.mcp("t", None))

    with pytest.raises(ToolTimeout):
        anyio.run(too_slow)
    assert [(r.caller.surface, r.ok) for r in seen.calls] == [("cli", False), ("mcp", False)]
    assert seen.calls[1].caller.user == "mcp:stdio"


def test_billing_meters_direct_calls_but_not_a_turns_own_step(settings: Settings) -> None:
    meter = Meter(Database(f"sqlite:///{settings.home / 'u.db'}"))
    billing = Billing(meter, Quotas(settings.quotas, meter))
    registry = ToolRegistry()
    registry.add(echo)
    hooks = UsageHooks()
    hooks.register(billing)
    hooks.register(billing)  # registering twice must not count twice
    calls = ToolCaller(registry, settings, hooks)
    calls.call("echo", {"text": "a"}, Caller.api_key("acme", "mk_abc"))
    calls.call("echo", {"text": "b"}, Caller("acme", "ann", "agent"))  # the turn's row counts it
    rows = meter.report(group_by="user", tenant="acme")
    assert [(r.group, r.tool_calls) for r in rows] == [("acme/key:mk_abc", 1)]
