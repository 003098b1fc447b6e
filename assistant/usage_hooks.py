"""The one metering/quota hook: an observer interface the runtime owns (``Runtime.usage_hooks``).

Every surface goes through it: ``call_tool`` asks ``admit`` before a tool runs (quotas; a
``MentorlyError`` refuses the call) and reports ``tool_called`` after it; the agent reports each
finished turn with ``turn_finished``. Metering registers on it once (``assistant.billing``).
An observer's failure after the fact is logged and never breaks the call or the turn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from assistant.caller import Caller

if TYPE_CHECKING:
    from assistant.agent import TurnRecord
    from assistant.tooling import Tool

log = logging.getLogger(__name__)
ObserverT = TypeVar("ObserverT")


@dataclass(frozen=True)
class ToolCallRecord:
    """One admitted tool call, finished (``ok``) or not."""

    caller: Caller
    tool: str
    ok: bool
    elapsed_ms: float
    image_pixels: int = 0


class UsageObserver(Protocol):
    @property
    def blocking_admit(self) -> bool:
        """Whether ``admit`` may block (read a database): async surfaces then run it in a thread."""

    def admit(self, caller: Caller, tool: Tool) -> None: ...

    def tool_called(self, record: ToolCallRecord) -> None: ...

    def turn_finished(self, record: TurnRecord) -> None: ...


class UsageHooks:
    def __init__(self) -> None:
        self._observers: list[UsageObserver] = []

    def __bool__(self) -> bool:
        return bool(self._observers)

    def register(self, observer: UsageObserver) -> None:
        if observer not in self._observers:
            self._observers.append(observer)

    def find(self, kind: type[ObserverT]) -> ObserverT | None:
        """The registered observer of ``kind``: registering twice would count everything twice."""
        return next((o for o in self._observers if isinstance(o, kind)), None)

    @property
    def blocking_admit(self) -> bool:
        return any(o.blocking_admit for o in self._observers)

    def admit(self, caller: Caller, tool: Tool) -> None:
        for observer in self._observers:
            observer.admit(caller, tool)

    def tool_called(self, record: ToolCallRecord) -> None:
        for observer in self._observers:
            try:
                observer.tool_called(record)
            except Exception:  # metering must never break a call that already ran
                log.exception("usage observer %r failed on a tool call", observer)

    def turn_finished(self, record: TurnRecord) -> None:
        for observer in self._observers:
            try:
                observer.turn_finished(record)
            except Exception:
                log.exception("usage observer %r failed on a turn", observer)
