"""Running one agent turn for the HTTP API.

``start_turn`` pulls the first event in a worker thread, so input the agent refuses (empty or
oversized message, another tenant's conversation) becomes an HTTP error before any response
starts. ``TurnRun.events`` then streams the rest, one ``next()`` per worker-thread hop, and
*always* closes the agent's generator when it stops: a client that disconnects mid-stream
cancels the turn, and because the agent stores a turn only once its generator completes,
nothing is half-written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Send

from assistant.api.metrics import Metrics
from assistant.errors import MentorlyError
from assistant.events import Done, ErrorEvent, Event, StepFinished, StepStarted, TextDelta
from assistant.runtime import Runtime
from assistant.tooling import Upload

log = logging.getLogger(__name__)
_END = object()


def _next(gen: Generator[Event, None, None]) -> Any:
    try:
        return next(gen)
    except StopIteration:
        return _END


class TurnRun:
    def __init__(self, gen: Generator[Event, None, None], first: Any, metrics: Metrics, surface: str) -> None:
        self._gen = gen
        self._first = first
        self._metrics = metrics
        self._surface = surface
        self.steps: dict[str, dict[str, Any]] = {}
        self.text = ""
        self.done: Done | None = None
        self.error: ErrorEvent | None = None

    def _record(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.steps[event.step_id] = {"id": event.step_id, "tool": event.tool,
                                         "arguments": event.arguments, "reason": event.reason,
                                         "reasons": event.reasons}
        elif isinstance(event, StepFinished):
            step = self.steps.setdefault(event.step_id, {"id": event.step_id, "tool": event.tool,
                                                          "arguments": {}, "reason": ""})
            step.update(ok=event.ok, summary=event.summary, result=event.result,
                        provenance=event.provenance, duration_ms=event.duration_ms, error=event.error)
            self._metrics.tool_call(event.tool, event.ok, self._surface)
        elif isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, Done):
            self.done = event
            self._metrics.add_tokens(event.usage)
        elif isinstance(event, ErrorEvent):
            self.error = event

    async def events(self) -> AsyncGenerator[Event, None]:
        outcome = "cancelled"
        try:
            event = self._first
            while event is not _END:
                self._record(event)
                yield event
                try:
                    event = await anyio.to_thread.run_sync(_next, self._gen)
                except MentorlyError as exc:
                    event = ErrorEvent(message=exc.message, error_type=exc.error_type)
                    self._record(event)
                    yield event
                    break
                except Exception:
                    log.exception("chat turn failed")
                    event = ErrorEvent(message="internal error; the server log has the details",
                                       error_type="internal_error")
                    self._record(event)
                    yield event
                    break
            outcome = "error" if self.error is not None else "ok"
        finally:
            self._gen.close()  # never executing here: worker-thread hops are not abandoned
            self._metrics.turns.labels(self._surface, outcome).inc()

    async def collect(self) -> TurnRun:
        async with contextlib.aclosing(self.events()) as events:
            async for _event in events:
                pass
        return self

    @property
    def step_list(self) -> list[dict[str, Any]]:
        return list(self.steps.values())


async def start_turn(runtime: Runtime, metrics: Metrics, surface: str, *, message: str,
                     files: Sequence[Upload], user: str | None, tenant: str,
                     conversation_id: str | None, collection: str | None = None,
                     history: list[dict[str, Any]] | None = None,
                     instructions: str = "") -> TurnRun:
    gen = runtime.agent.run(message, files=files, user=user, tenant=tenant,
                            conversation_id=conversation_id, collection=collection, history=history,
                            instructions=instructions)
    try:
        first = await anyio.to_thread.run_sync(_next, gen)
    except BaseException:
        gen.close()
        raise
    return TurnRun(gen, first, metrics, surface)


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its async iterator however the stream ends
    (client gone, cancellation), so the iterator's ``finally`` runs now, not at GC time."""

    async def stream_response(self, send: Send) -> None:
        iterator = self.body_iterator
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
