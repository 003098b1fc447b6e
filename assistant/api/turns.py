"""Running one agent turn for the HTTP API.

Every turn first takes a place at the runtime's turn gate (``assistant.admission``): it runs
at once, waits in line, or is refused with 429. ``start_turn`` pulls the first event in a
worker thread, so input the agent refuses (empty or oversized message, another tenant's
conversation) becomes an HTTP error before any response starts. ``TurnRun.events`` then
streams the rest, one ``next()`` per hop on the gate's threads, yields :data:`KEEPALIVE`
whenever a hop (a tool, a slow model) takes longer than ``[server] keepalive_s``, and
*always* closes the agent's generator and gives the gate's place back when it stops: a
client that disconnects mid-stream cancels the turn, and because the agent stores a turn
only once its generator completes, nothing is half-written.

A streamed turn that must wait in line starts its response at once and reports its place
(:func:`queued_stream`), so the learner sees why nothing happens yet, and proxies see bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Sequence
from concurrent.futures import Future
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Send

from assistant.admission import Ticket
from assistant.api.metrics import Metrics
from assistant.errors import MentorlyError
from assistant.events import Done, ErrorEvent, Event, StepFinished, StepStarted, TextDelta
from assistant.runtime import Runtime
from assistant.tooling import Upload

log = logging.getLogger(__name__)
_END = object()


class KeepAlive:
    """Nothing happened for ``keepalive_s``: surfaces write an SSE comment line."""

    __slots__ = ()


KEEPALIVE = KeepAlive()
SSE_PING = b": ping\n\n"


def _next(gen: Generator[Event, None, None]) -> Any:
    try:
        return next(gen)
    except StopIteration:
        return _END


class TurnRun:
    def __init__(self, gen: Generator[Event, None, None], first: Any, metrics: Metrics, surface: str,
                 ticket: Ticket, keepalive_s: float = 10.0) -> None:
        self._gen = gen
        self._first = first
        self._metrics = metrics
        self._surface = surface
        self._ticket = ticket
        self._keepalive_s = keepalive_s
        self._started = False
        self._finished = False
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

    def _hop(self) -> Future[Any]:
        """The agent's next event, computed on one of the gate's threads (with this context,
        so usage attribution and request ids follow the turn)."""
        context = contextvars.copy_context()
        return self._ticket.executor.submit(context.run, _next, self._gen)

    async def events(self) -> AsyncGenerator[Event | KeepAlive, None]:
        outcome = "cancelled"
        pending: Future[Any] | None = None
        self._started = True
        try:
            event = self._first
            while event is not _END:
                self._record(event)
                yield event
                pending = self._hop()
                waiting = asyncio.wrap_future(pending)
                while True:
                    done, _ = await asyncio.wait({waiting}, timeout=self._keepalive_s)
                    if done:
                        break
                    yield KEEPALIVE
                try:
                    event = waiting.result()
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
            if pending is not None and not pending.done():
                # The client left while a hop runs: close the generator when that hop returns
                # (a generator cannot be closed while it executes), on the hop's own thread.
                final = outcome
                pending.add_done_callback(lambda _future: self._finish(final))
            else:
                self._finish(outcome)

    def _finish(self, outcome: str) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self._gen.close()
        finally:
            self._ticket.release()
            self._metrics.turns.labels(self._surface, outcome).inc()

    def abandon(self) -> None:
        """The response ended before its events were read (client gone at once): close the
        turn and give its place back. Once :meth:`events` started, it does this itself."""
        if not self._started:
            self._finish("cancelled")

    async def collect(self) -> TurnRun:
        async with contextlib.aclosing(self.events()) as events:
            async for _event in events:
                pass
        return self

    @property
    def ticket(self) -> Ticket:
        return self._ticket

    @property
    def first(self) -> Any:
        """The first event (``_END`` when the agent produced none)."""
        return self._first

    @property
    def step_list(self) -> list[dict[str, Any]]:
        return list(self.steps.values())


def admit_turn(runtime: Runtime) -> Ticket:
    """A place at the turn gate (running or in line); ServerBusy (429) when the line is full."""
    return runtime.turn_gate.admit()


async def wait_for_turn(ticket: Ticket) -> None:
    """Wait in line without a response to report to (non-streamed requests)."""
    try:
        async for _position in ticket.line(interval=3600.0):
            pass
    except BaseException:
        ticket.release()
        raise


def _close_turn(gen: Generator[Event, None, None], ticket: Ticket) -> None:
    try:
        gen.close()
    finally:
        ticket.release()


async def begin_turn(runtime: Runtime, metrics: Metrics, surface: str, ticket: Ticket,
                     gen: Generator[Event, None, None]) -> TurnRun:
    """Pull ``gen``'s first event on a gate thread; the turn owns ``ticket`` from here on."""
    future: Future[Any] | None = None
    try:
        future = ticket.executor.submit(contextvars.copy_context().run, _next, gen)
        first = await asyncio.wrap_future(future)
    except BaseException:
        if future is not None and not future.done():
            # Cancelled (client gone) while the first hop runs: a running generator cannot be
            # closed, so close it and give the place back when the hop returns.
            future.add_done_callback(lambda _future: _close_turn(gen, ticket))
        else:
            _close_turn(gen, ticket)
        raise
    return TurnRun(gen, first, metrics, surface, ticket, runtime.settings.server.keepalive_s)


async def start_turn(runtime: Runtime, metrics: Metrics, surface: str, ticket: Ticket, *, message: str,
                     files: Sequence[Upload], user: str | None, tenant: str,
                     conversation_id: str | None, collection: str | None = None,
                     history: list[dict[str, Any]] | None = None,
                     instructions: str = "") -> TurnRun:
    gen = runtime.agent.run(message, files=files, user=user, tenant=tenant,
                            conversation_id=conversation_id, collection=collection, history=history,
                            instructions=instructions)
    return await begin_turn(runtime, metrics, surface, ticket, gen)


async def queued_stream(ticket: Ticket, keepalive_s: float, start: Callable[[], Awaitable[TurnRun]],
                        on_place: Callable[[int, int], bytes],
                        body: Callable[[TurnRun], AsyncIterator[bytes]],
                        on_error: Callable[[MentorlyError], bytes]) -> AsyncIterator[bytes]:
    """A streamed turn that waits in line first: ``on_place(position, retry_after_s)`` at once,
    whenever the place changes and at least every ``keepalive_s``; then the turn's own stream.
    A refusal (the line did not move in time, input the agent refuses) ends the stream with
    ``on_error``; however the stream ends, the place is given back."""
    try:
        async for position in ticket.line(keepalive_s):
            yield on_place(position, ticket.retry_after_s)
        turn = await start()
    except MentorlyError as exc:
        ticket.release()
        yield on_error(exc)
        return
    finally:
        if not ticket.running:
            ticket.release()
    chunks = body(turn)
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        try:  # close the turn's stream now (client gone), not whenever it is garbage-collected
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            turn.abandon()


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its async iterator however the stream ends
    (client gone, cancellation), so the iterator's ``finally`` runs now, not at GC time; and
    the turn it streams, even when the iterator never started."""

    def __init__(self, content: Any, *, turn: TurnRun | None = None, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._turn = turn

    async def stream_response(self, send: Send) -> None:
        iterator = self.body_iterator
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._turn is not None:
                self._turn.abandon()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
