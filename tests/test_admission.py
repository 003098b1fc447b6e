"""The turn gate (``assistant.admission``) on its own: first come first served, places in line,
refusals with a retry guess, release from anywhere, time-outs in line, waiting without threads,
and never more than ``active`` turns at once under many threads."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from assistant.admission import GateState, ServerBusy, Ticket, TurnGate, place_message
from assistant.errors import RateLimited


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return check()


def test_a_gate_needs_a_place_to_run() -> None:
    with pytest.raises(ValueError, match="active >= 1"):
        TurnGate(0, 4)
    with pytest.raises(ValueError, match="queue >= 0"):
        TurnGate(1, -1)


def test_first_come_first_served_with_places_in_line() -> None:
    gate = TurnGate(2, 3)
    a, b, c, d, e = (gate.admit() for _ in range(5))
    assert [t.running for t in (a, b, c, d, e)] == [True, True, False, False, False]
    assert [t.position for t in (a, b, c, d, e)] == [0, 0, 1, 2, 3]
    assert gate.state() == GateState(running=2, waiting=3, active=2, queue=3)
    assert gate.state().capacity == 5

    a.release()  # the first in line runs; everyone behind moves up one place
    assert c.running and not d.running and not e.running
    assert [d.position, e.position] == [1, 2]
    assert gate.state() == GateState(2, 2, 2, 3)

    b.release()
    assert d.running and e.position == 1
    c.release()
    assert e.running and gate.state() == GateState(2, 0, 2, 3)
    for t in (d, e):
        t.release()
    assert gate.state() == GateState(0, 0, 2, 3)


def test_grants_follow_arrival_order() -> None:
    gate = TurnGate(1, 20)
    first = gate.admit()
    line = [gate.admit() for _ in range(20)]
    granted: list[int] = []
    current = first
    for _ in range(20):
        current.release()
        [now] = [i for i, t in enumerate(line) if t.running and i not in granted]
        granted.append(now)
        current = line[now]
    current.release()
    assert granted == list(range(20))
    assert gate.state().running == 0 and gate.state().waiting == 0


def test_a_full_line_refuses_at_once_with_a_retry_guess() -> None:
    gate = TurnGate(2, 1)
    held = [gate.admit() for _ in range(3)]
    started = time.monotonic()
    with pytest.raises(ServerBusy) as refused:
        gate.admit()
    assert time.monotonic() - started < 0.5  # at once, not after waiting
    exc = refused.value
    assert isinstance(exc, RateLimited) and exc.status_code == 429 and exc.error_type == "server_busy"
    # two turns per round of ~10 s (the seed guess): place 2 behind the runners is one round
    assert exc.retry_after_s == 10
    assert exc.message == "Many learners are asking right now. Please try again in 10 s."
    assert exc.localized("zh") == "现在提问的同学很多，请在 10 秒后再试。"
    assert gate.state() == GateState(2, 1, 2, 1)  # the refusal took no place
    for t in held:
        t.release()
    assert gate.admit().running  # a place again


def test_retry_guesses_grow_with_the_place_and_follow_real_turn_lengths() -> None:
    gate = TurnGate(2, 10)
    running = [gate.admit() for _ in range(2)]
    line = [gate.admit() for _ in range(6)]
    guesses = [t.retry_after_s for t in line]
    assert guesses == [10, 10, 20, 20, 30, 30]  # ceil(place / active) rounds of 10 s
    assert all(1 <= g <= 300 for g in guesses)
    # turns that finish at once pull the guess down towards their real length (at least 1 s)
    for _ in range(30):
        for t in running:
            t.release()
        running = [t for t in line[:2]]
        line = line[2:] + [gate.admit(), gate.admit()]
    assert [t.retry_after_s for t in line[:2]] == [1, 1]
    for t in running + line:
        t.release()
    # a very long line is capped, never a guess of hours
    big = TurnGate(1, 10_000)
    big._turn_s = 60.0
    tickets = [big.admit() for _ in range(50)]
    assert tickets[-1].retry_after_s == 300
    assert tickets[1].retry_after_s == 60


def test_release_is_idempotent() -> None:
    gate = TurnGate(1, 2)
    a, b, c = gate.admit(), gate.admit(), gate.admit()
    a.release()
    a.release()  # a second release must not give away another place
    assert b.running and not c.running and c.position == 1
    assert gate.state() == GateState(1, 1, 1, 2)
    c.release()
    c.release()
    b.release()
    b.release()
    assert gate.state() == GateState(0, 0, 1, 2)
    assert a.position == 0 and c.position == 0  # released tickets are nowhere in line


def test_release_from_another_thread_wakes_the_next_in_line() -> None:
    gate = TurnGate(1, 1)
    a, b = gate.admit(), gate.admit()
    assert not b.wait(0.05)
    releaser = threading.Timer(0.1, a.release)
    started = time.monotonic()
    releaser.start()
    assert b.wait(5)
    assert 0.08 <= time.monotonic() - started < 2
    releaser.join()
    assert b.running and gate.state() == GateState(1, 0, 1, 1)
    b.release()


def test_a_waiting_ticket_released_leaves_the_line_and_is_never_granted() -> None:
    gate = TurnGate(1, 3)
    a, gone, c = gate.admit(), gate.admit(), gate.admit()
    assert c.position == 2
    gone.release()  # the client left while waiting
    assert c.position == 1 and gate.state().waiting == 1
    a.release()
    assert c.running and not gone.running
    assert gate.state() == GateState(1, 0, 1, 3)
    c.release()
    assert gate.state() == GateState(0, 0, 1, 3)


def test_the_sync_line_reports_each_new_place_until_the_turn_runs() -> None:
    gate = TurnGate(1, 3)
    a, b, c = gate.admit(), gate.admit(), gate.admit()
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        for position in c.waiting_positions(0.02):
            seen.append(position)
        done.set()

    follower = threading.Thread(target=follow)
    follower.start()
    assert eventually(lambda: 2 in seen)
    b.release()
    assert eventually(lambda: 1 in seen)
    assert not done.is_set()
    a.release()
    assert done.wait(5)
    follower.join(5)
    assert c.running
    assert seen[0] == 2 and seen[-1] == 1 and seen == sorted(seen, reverse=True)
    c.release()


def test_a_queue_timeout_refuses_and_frees_the_place_sync() -> None:
    gate = TurnGate(1, 1, queue_timeout_s=0.2)
    a, b = gate.admit(), gate.admit()
    positions: list[int] = []
    started = time.monotonic()
    with pytest.raises(ServerBusy) as refused:
        for position in b.waiting_positions(0.05):
            positions.append(position)
    took = time.monotonic() - started
    assert 0.18 <= took < 2
    assert len(positions) >= 2 and set(positions) == {1}
    assert "did not move in time" in refused.value.message
    assert refused.value.localized("zh").startswith("现在提问的同学很多，排队时间过长")
    assert b.released and gate.state() == GateState(1, 0, 1, 1)
    c = gate.admit()  # the place in line is free again: waiting, not refused
    assert c.position == 1
    a.release()
    assert c.running and not b.running
    c.release()


def test_a_queue_timeout_refuses_and_frees_the_place_async() -> None:
    gate = TurnGate(1, 1, queue_timeout_s=0.2)
    a, b = gate.admit(), gate.admit()

    async def wait_in_line() -> list[int]:
        positions: list[int] = []
        async for position in b.line(0.05):
            positions.append(position)
        return positions

    started = time.monotonic()
    with pytest.raises(ServerBusy, match="did not move in time"):
        asyncio.run(wait_in_line())
    assert 0.18 <= time.monotonic() - started < 2
    assert gate.state() == GateState(1, 0, 1, 1)
    a.release()
    assert gate.state() == GateState(0, 0, 1, 1)


def test_the_async_line_wakes_as_soon_as_the_place_is_granted() -> None:
    """Granted from another thread, a waiter does not sleep out its reporting interval."""
    gate = TurnGate(1, 1, queue_timeout_s=30)
    a, b = gate.admit(), gate.admit()

    async def wait_in_line() -> tuple[list[int], float]:
        positions = []
        threading.Timer(0.1, a.release).start()
        started = time.monotonic()
        async for position in b.line(interval=30.0):
            positions.append(position)
        return positions, time.monotonic() - started

    positions, took = asyncio.run(wait_in_line())
    assert positions == [1]  # reported once (nothing changed), and then the turn ran
    assert 0.08 <= took < 0.6  # woken by the grant, not the one-second poll
    assert b.running
    b.release()


def test_waiting_in_line_holds_no_thread() -> None:
    """Fifty learners wait with ``await``: no thread each, the loop stays responsive, and with
    a worker-thread limit of one they still all run, in order."""
    gate = TurnGate(1, 50, queue_timeout_s=30)
    first = gate.admit()
    tickets = [gate.admit() for _ in range(50)]
    order: list[int] = []
    threads_while_waiting: list[int] = []
    ticks = 0

    async def learner(i: int, ticket: Ticket) -> None:
        async for _position in ticket.line(interval=0.05):
            pass
        order.append(i)
        # the turn's own work on a worker thread (the limiter allows one at a time)
        await anyio.to_thread.run_sync(time.sleep, 0.001)
        ticket.release()

    async def heartbeat(stop: anyio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    async def main() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        before = threading.active_count()
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat, stop)
            for i, t in enumerate(tickets):
                tg.start_soon(learner, i, t)
            await anyio.sleep(0.3)  # all fifty are waiting now
            assert order == [] and gate.state().waiting == 50
            threads_while_waiting.append(threading.active_count() - before)
            first.release()
            with anyio.fail_after(20):
                while len(order) < 50:
                    await anyio.sleep(0.01)
            stop.set()

    asyncio.run(main())
    assert threads_while_waiting[0] <= 0
    assert ticks >= 10  # the loop was never blocked by a waiter
    assert order == list(range(50))
    assert gate.state() == GateState(0, 0, 1, 50)


def test_many_threads_never_run_more_than_active_turns() -> None:
    active, per_thread, n_threads = 3, 40, 24
    gate = TurnGate(active, 1_000, queue_timeout_s=30)
    lock = threading.Lock()
    running = 0
    peak = 0
    over_capacity: list[tuple[int, int]] = []
    ran = 0

    def worker() -> None:
        nonlocal running, peak, ran
        for _ in range(per_thread):
            ticket = gate.admit()
            assert ticket.wait(30)
            with lock:
                running += 1
                peak = max(peak, running)
                ran += 1
            state = gate.state()
            if state.running > active or state.waiting > state.queue:
                over_capacity.append((state.running, state.waiting))
            time.sleep(0.0005)
            with lock:
                running -= 1
            ticket.release()
            ticket.release()  # a double release from a sloppy caller changes nothing

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert ran == per_thread * n_threads
    assert over_capacity == []
    assert peak == active  # the limit is reached (so it was tested) and never passed
    assert gate.state() == GateState(0, 0, active, 1_000)


def test_many_threads_with_a_small_line_are_admitted_or_refused_never_stuck() -> None:
    active, queue, n_threads, per_thread = 2, 3, 16, 30
    gate = TurnGate(active, queue, queue_timeout_s=30)
    counts = {"ran": 0, "refused": 0}
    lock = threading.Lock()
    running = 0
    peak = 0

    def worker() -> None:
        nonlocal running, peak
        for _ in range(per_thread):
            try:
                ticket = gate.admit()
            except ServerBusy as exc:
                assert exc.retry_after_s >= 1
                with lock:
                    counts["refused"] += 1
                continue
            assert ticket.wait(30)
            with lock:
                running += 1
                peak = max(peak, running)
                counts["ran"] += 1
            time.sleep(0.0005)
            with lock:
                running -= 1
            ticket.release()

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert counts["ran"] + counts["refused"] == n_threads * per_thread
    assert counts["ran"] >= active + queue and counts["refused"] >= 1
    assert peak <= active
    assert gate.state() == GateState(0, 0, active, queue)


def test_place_messages_in_both_languages() -> None:
    assert place_message(1, 12, "en") == "Many learners are asking right now. Your turn is next (about 12 s)."
    assert place_message(3, 30, "en") == ("Many learners are asking right now. You are number 3 in line; "
                                         "your answer should start in about 30 s.")
    assert place_message(1, 12, "zh") == "现在提问的同学很多。下一个就轮到你（大约 12 秒）。"
    assert place_message(4, 40, "zh") == "现在提问的同学很多。你排在第 4 位，大约 40 秒后开始回答。"
    assert math.isclose(TurnGate(1, 0).queue_timeout_s, 120.0)
