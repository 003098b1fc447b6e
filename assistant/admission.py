"""Admission control: how many chat turns run at once, and a bounded, first-come line for the rest.

A class asks at the same moment. The local model writes ``[llm] parallel`` answers at once
(llama.cpp slots); more turns than that would only slow every answer down, and an unbounded
pile-up ends in timeouts. So every surface (``/api/chat``, ``/v1/chat/completions``, the
widget, the chat page) passes through one :class:`TurnGate` per process:

- up to ``active`` turns run; the next ``queue`` wait in line, first come first served, and
  see their place in the line while they wait;
- beyond that a turn is refused at once with :class:`ServerBusy` (HTTP 429 with
  ``Retry-After``), never left to hang;
- a turn that waited ``queue_timeout_s`` without a place is refused the same way.

The gate is thread-safe and serves both worlds: the HTTP handlers wait with ``await``
(no thread is held while a learner waits), the chat page's synchronous generator with
:meth:`Ticket.wait`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from assistant.errors import RateLimited
from assistant.messages import say

_MAX_RETRY_S = 300


class ServerBusy(RateLimited):
    """Every place to run and every place in line is taken (429, ``Retry-After``)."""

    error_type = "server_busy"

    def __init__(self, retry_after_s: int, *, waited: bool = False) -> None:
        key = "busy_waited" if waited else "busy"
        super().__init__(say(key, "en", seconds=retry_after_s), retry_after_s=retry_after_s)
        self.zh = say(key, "zh", seconds=retry_after_s)


def place_message(position: int, seconds: int, language: str) -> str:
    """What a learner waiting in line reads, in their language."""
    return say("queued_next" if position <= 1 else "queued", language, position=position,
               seconds=seconds)


@dataclass(frozen=True)
class GateState:
    running: int
    waiting: int
    active: int
    queue: int

    @property
    def capacity(self) -> int:
        return self.active + self.queue


class Ticket:
    """One turn's place: running (``position == 0``) or waiting (1 = next in line).

    ``release`` gives the place back; it is idempotent and safe from any thread, and must run
    however the turn ends (done, error, client gone, timed out in line).
    """

    def __init__(self, gate: TurnGate) -> None:
        self._gate = gate
        self._granted = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_granted: asyncio.Event | None = None
        self.released = False
        self.queued_at = time.monotonic()
        self.started_at: float | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The threads a running turn steps its agent generator on (the gate's pool)."""
        return self._gate.executor

    @property
    def running(self) -> bool:
        return self._granted.is_set()

    @property
    def position(self) -> int:
        """0 when running, else the place in line (1 = next)."""
        return self._gate._position(self)

    @property
    def retry_after_s(self) -> int:
        """A fair guess at how long until this turn runs, in whole seconds (at least 1)."""
        return self._gate._estimate(self.position)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn may run; False if ``timeout`` passed first."""
        return self._granted.wait(timeout)

    async def wait_async(self, timeout: float) -> bool:
        """Wait (without holding a thread) until the turn may run; False after ``timeout``."""
        event = self._gate._async_event(self)
        if event.is_set():
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return self.running
        return True

    async def line(self, interval: float) -> AsyncIterator[int]:
        """Yield the place in line at once and then every ``interval`` seconds (and whenever
        it changes) until the turn may run; raise ServerBusy once ``queue_timeout_s`` passed."""
        deadline = self.queued_at + self._gate.queue_timeout_s
        last = -1
        last_sent = 0.0
        while not self.running:
            position = self.position
            now = time.monotonic()
            if position != last or now - last_sent >= interval:
                last, last_sent = position, now
                yield position
            if now >= deadline:
                self.release()
                raise ServerBusy(self._gate._estimate(self._gate.state().waiting), waited=True)
            await self.wait_async(min(1.0, interval, max(0.01, deadline - now)))

    def waiting_positions(self, interval: float = 1.0) -> Iterator[int]:
        """The synchronous :meth:`line`: the place in line about every ``interval`` seconds."""
        deadline = self.queued_at + self._gate.queue_timeout_s
        while not self.running:
            yield self.position
            if time.monotonic() >= deadline:
                self.release()
                raise ServerBusy(self._gate._estimate(self._gate.state().waiting), waited=True)
            self.wait(min(interval, max(0.01, deadline - time.monotonic())))

    def release(self) -> None:
        self._gate._release(self)

    def _grant(self) -> None:
        self.started_at = time.monotonic()
        self._granted.set()
        if self._loop is not None and self._async_granted is not None:
            try:
                self._loop.call_soon_threadsafe(self._async_granted.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


class TurnGate:
    """``active`` turns at once, ``queue`` more in line (FIFO), the rest refused."""

    def __init__(self, active: int, queue: int, queue_timeout_s: float = 120.0) -> None:
        if active < 1 or queue < 0:
            raise ValueError("a turn gate needs active >= 1 and queue >= 0")
        self.active = active
        self.queue = queue
        self.queue_timeout_s = queue_timeout_s
        self._lock = threading.Lock()
        self._running: set[Ticket] = set()
        self._line: deque[Ticket] = deque()
        self._turn_s = 10.0  # running average of a turn's length, seeds the Retry-After guess
        # Turns step their agent generator on these threads: one per running turn and spare.
        self.executor = ThreadPoolExecutor(max_workers=active * 2 + 4, thread_name_prefix="mentorly-turn")

    def admit(self) -> Ticket:
        """A ticket that runs now or waits in line; ServerBusy when the line is full."""
        ticket = Ticket(self)
        with self._lock:
            if len(self._running) < self.active and not self._line:
                self._running.add(ticket)
                ticket._grant()
                return ticket
            if len(self._line) >= self.queue:
                retry = self._estimate_locked(len(self._line) + 1)
                raise ServerBusy(retry)
            self._line.append(ticket)
            return ticket

    def state(self) -> GateState:
        with self._lock:
            return GateState(len(self._running), len(self._line), self.active, self.queue)

    def _position(self, ticket: Ticket) -> int:
        with self._lock:
            if ticket in self._running or ticket.released:
                return 0
            try:
                return self._line.index(ticket) + 1
            except ValueError:
                return 0

    def _estimate(self, position: int) -> int:
        with self._lock:
            return self._estimate_locked(position)

    def _estimate_locked(self, position: int) -> int:
        rounds = math.ceil(max(position, 1) / self.active)
        return max(1, min(_MAX_RETRY_S, math.ceil(rounds * self._turn_s)))

    def _async_event(self, ticket: Ticket) -> asyncio.Event:
        with self._lock:
            if ticket._async_granted is None:
                ticket._loop = asyncio.get_running_loop()
                ticket._async_granted = asyncio.Event()
                if ticket.running:
                    ticket._async_granted.set()
            return ticket._async_granted

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.released:
                return
            ticket.released = True
            if ticket in self._running:
                self._running.discard(ticket)
                if ticket.started_at is not None:
                    took = time.monotonic() - ticket.started_at
                    self._turn_s = 0.8 * self._turn_s + 0.2 * took
            else:
                try:
                    self._line.remove(ticket)
                except ValueError:
                    pass
            while self._line and len(self._running) < self.active:
                nxt = self._line.popleft()
                self._running.add(nxt)
                nxt._grant()
