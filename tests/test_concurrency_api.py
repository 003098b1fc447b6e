"""Many learners at once, over real HTTP (uvicorn on 127.0.0.1) on every surface: ``/api/chat``,
``/v1/chat/completions`` (also through the official ``openai`` client) and the widget.

The scripted fake LLM waits ``delay_s`` before each streamed piece, so a turn takes a known
time. On the tight server one turn runs and one waits: the next is refused with 429 and
``Retry-After``, the one in line hears its place and runs only after the first, a client that
leaves (in line, while streaming, as its turn starts) gives its place back. Slow steps send
``: ping`` comments. Floods of sixteen learners end in answers or 429s, never 5xx or a hang."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from assistant.admission import place_message
from assistant.llm.fake import FakeBackend
from assistant.security.widget_tokens import sign_token
from tests.support.live_api import LiveServer, make_runtime, serve
from tests.support.turn_calls import SITE, Call, Surface, echo, surfaces, until

SURFACES = ["api", "v1", "widget"]
METRIC_SURFACE = {"api": "api", "v1": "openai", "widget": "widget"}


class Env:
    def __init__(self, server: LiveServer, app: Any, backend: FakeBackend) -> None:
        self.server, self.app, self.backend = server, app, backend
        self.url = server.url
        self.gate = app.state.runtime.turn_gate
        self.api_key, _ = app.state.keys.create("acme", "chat")
        info, secret = app.state.widget_keys.create("acme", [SITE])
        token = sign_token(secret, tenant="acme", user="learner-1", ttl_s=3600)
        self.surfaces: dict[str, Surface] = surfaces(self.api_key, info.key, token)

    def state(self) -> tuple[int, int]:
        state = self.gate.state()
        return state.running, state.waiting

    def asked(self) -> list[str]:
        """The last user message of every request the model got, in order."""
        out = []
        for request in self.backend.requests:
            users = [m for m in request.messages if m.get("role") == "user"]
            content = users[-1].get("content") if users else ""
            out.append(content if isinstance(content, str) else json.dumps(content))
        return out

    def turns_metric(self, surface: str, outcome: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "mentorly_chat_turns_total" and sample.labels == {
                        "surface": surface, "outcome": outcome}:
                    return sample.value
        return 0.0


def _env(tmp_path_factory: pytest.TempPathFactory, name: str, **server: Any) -> Iterator[Env]:
    backend = FakeBackend()
    runtime = make_runtime(tmp_path_factory.mktemp(name), backend=backend,
                           server={"keepalive_s": 0.2, "queue_timeout_s": 10, **server})
    live, app = serve(runtime)
    yield Env(live, app, backend)
    live.stop()


@pytest.fixture(scope="module")
def tight_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from _env(tmp_path_factory, "tight", max_active_turns=1, turn_queue=1)


@pytest.fixture(scope="module")
def wide_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from _env(tmp_path_factory, "wide", max_active_turns=4, turn_queue=16)


def _checked(env: Env) -> Iterator[Env]:
    """Each test starts with an empty gate and a quick model, and must leave the gate empty."""
    env.backend.delay_s = 0.0
    timeout = env.gate.queue_timeout_s
    assert env.state() == (0, 0)
    yield env
    env.backend.delay_s = 0.0
    env.gate.queue_timeout_s = timeout
    asyncio.run(until(lambda: env.state() == (0, 0), 10, "the gate to empty after the test"))


@pytest.fixture
def tight(tight_env: Env) -> Iterator[Env]:
    yield from _checked(tight_env)


@pytest.fixture
def wide(wide_env: Env) -> Iterator[Env]:
    yield from _checked(wide_env)


def go(scenario: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    """Run a scenario; a hang fails the test instead of stalling the suite."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))


async def _one_running(env: Env, c: httpx.AsyncClient, surface: Surface,
                       message: str = "first question") -> tuple[Call, asyncio.Task[Call]]:
    """Start a streamed turn and return once its first piece arrived (so it holds the place)."""
    call = Call(surface, message)
    task = asyncio.create_task(call.run(c, env.url))
    await until(lambda: call.first_content_at is not None or task.done(), what="the first turn's piece")
    assert call.status == 200, call.body
    return call, task


async def _one_waiting(env: Env, c: httpx.AsyncClient, call: Call) -> asyncio.Task[Call]:
    """Start ``call`` and return once it was told its place in line."""
    task = asyncio.create_task(call.run(c, env.url))
    await until(lambda: bool(call.places) or task.done(), what="a place in line")
    assert call.status == 200 and call.places, (call.status, call.body, call.items)
    return task


def _assert_busy(r: Call, surface: str) -> int:
    """A refusal: 429, ``Retry-After``, ``server_busy`` in the one error shape; the seconds."""
    assert r.status == 429, (r.status, r.body, r.items)
    assert r.headers is not None
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 300
    error = r.body["error"]
    assert error["type"] == "server_busy"
    assert error["message"] == f"Many learners are asking right now. Please try again in {retry} s."
    assert set(error) <= {"type", "message", "retry_after_s"}
    assert error.get("retry_after_s", retry) == retry
    if surface == "widget":  # the widget's page must be able to read why
        assert r.headers["access-control-allow-origin"] == SITE
    return retry


def _place_index(call: Call) -> list[int]:
    return [i for i, item in enumerate(call.items)
            if item.kind == "queued" or (item.kind == "comment" and item.data.startswith("queued "))]


def _content_index(call: Call) -> list[int]:
    return [i for i, item in enumerate(call.items) if item.kind in ("text_delta", "chunk")
            and (item.kind == "text_delta" or item.data["choices"] and
                 item.data["choices"][0].get("delta", {}).get("content"))]


# -- one runs, one waits, the next is refused ------------------------------------------------


@pytest.mark.parametrize("name", SURFACES)
def test_one_runs_one_waits_and_the_third_is_refused(tight: Env, name: str) -> None:
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.1

    async def scenario() -> tuple[Call, Call, Call, tuple[int, int]]:
        async with client() as c:
            a, ta = await _one_running(tight, c, surface)
            b = Call(surface, "second question")
            tb = await _one_waiting(tight, c, b)
            full = tight.state()
            third = await Call(surface, "a refused question").run(c, tight.url)
            await asyncio.gather(ta, tb)
            return a, b, third, full

    a, b, third, full = go(scenario())
    assert full == (1, 1)
    _assert_busy(third, name)
    assert third.ended_at is not None and third.ended_at < (a.finished_at or 0)  # refused at once

    assert a.text == echo("first question") and a.finished_at is not None and a.places == []
    assert b.text == echo("second question") and b.finished_at is not None and not b.errors
    assert {p["position"] for p in b.places} == {1}
    for place in b.places:
        assert place["retry_after_s"] >= 1
        if name != "v1":
            assert place["message"] == place_message(1, place["retry_after_s"], "en")
            assert place["message"].startswith("Many learners are asking right now. Your turn is next")
    # every place came before any of the answer, and the answer only after the first turn ended
    assert max(_place_index(b)) < min(_content_index(b))
    assert b.first_content_at is not None and b.first_content_at > a.finished_at
    asked = tight.asked()
    assert asked[-2:] == ["first question", "second question"]
    assert "a refused question" not in asked


@pytest.mark.parametrize("name", ["api", "widget"])
def test_a_chinese_learner_waits_in_chinese(tight: Env, name: str) -> None:
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.05
    question = "光合作用是什么？"

    async def scenario() -> tuple[Call, Call]:
        async with client() as c:
            a, ta = await _one_running(tight, c, surface)
            b = Call(surface, question)
            tb = await _one_waiting(tight, c, b)
            await asyncio.gather(ta, tb)
            return a, b

    a, b = go(scenario())
    assert b.places
    for place in b.places:
        assert place["message"] == place_message(1, place["retry_after_s"], "zh")
        assert place["message"].startswith("现在提问的同学很多。下一个就轮到你")
    assert b.text == echo(question) == f"（模拟回答）你说：{question}"
    assert a.finished_at is not None and (b.first_content_at or 0) > a.finished_at


def test_the_openai_client_streams_through_a_queued_turn_and_sees_429(tight: Env) -> None:
    tight.backend.delay_s = 0.1

    async def scenario() -> dict[str, Any]:
        oai = AsyncOpenAI(base_url=tight.url + "/v1", api_key=tight.api_key, max_retries=0, timeout=30)
        out: dict[str, Any] = {}
        async with client() as c:
            a, ta = await _one_running(tight, c, tight.surfaces["api"])
            stream = await oai.chat.completions.create(
                model="mentorly", stream=True, messages=[{"role": "user", "content": "second question"}])
            out["state"] = tight.state()  # the stream started while it waits in line
            try:
                await oai.chat.completions.create(
                    model="mentorly", messages=[{"role": "user", "content": "a refused question"}])
            except openai.RateLimitError as exc:
                out["refused"] = exc
            pieces: list[str] = []
            first_at = None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    first_at = first_at or time.monotonic()
                    pieces.append(chunk.choices[0].delta.content)
            out["text"], out["first_at"] = "".join(pieces), first_at
            await ta
            out["a"] = a
        await oai.close()
        return out

    out = go(scenario())
    assert out["state"] == (1, 1)
    refused = out["refused"]
    assert refused.status_code == 429 and int(refused.response.headers["retry-after"]) >= 1
    assert refused.response.json()["error"]["type"] == "server_busy"
    assert out["text"] == echo("second question")
    assert out["first_at"] > out["a"].finished_at
    assert tight.asked()[-2:] == ["first question", "second question"]


@pytest.mark.parametrize("name", ["api", "v1"])
def test_a_request_without_streaming_waits_in_line_and_succeeds(tight: Env, name: str) -> None:
    tight.backend.delay_s = 0.1

    async def scenario() -> tuple[Call, Call]:
        async with client() as c:
            a, ta = await _one_running(tight, c, tight.surfaces["api"])
            b = Call(tight.surfaces[name], "second question", stream=False)
            tb = asyncio.create_task(b.run(c, tight.url))
            await until(lambda: tight.state() == (1, 1), what="the request to wait in line")
            assert b.status is None  # no answer while it waits
            await asyncio.gather(ta, tb)
            return a, b

    a, b = go(scenario())
    assert b.status == 200 and b.text == echo("second question")
    assert a.finished_at is not None and b.ended_at is not None and b.ended_at > a.finished_at


@pytest.mark.parametrize("name", SURFACES)
def test_a_turn_that_waits_too_long_is_refused_in_its_stream(tight: Env, name: str) -> None:
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.1
    tight.gate.queue_timeout_s = 0.3

    async def scenario() -> tuple[Call, Call, tuple[int, int]]:
        async with client() as c:
            a, ta = await _one_running(tight, c, surface, "first question takes a while to answer")
            b = Call(surface, "a question too late")
            await b.run(c, tight.url)  # ends by itself: refused after 0.3 s in line
            state = tight.state()
            await ta
            return a, b, state

    a, b, state_after_refusal = go(scenario())
    assert a.finished_at is not None and b.ended_at is not None and b.ended_at < a.finished_at
    assert state_after_refusal == (1, 0)  # the place in line was given back at once
    assert b.status == 200 and b.places and b.content_count == 0
    [error] = b.errors
    if name == "v1":
        assert error["error"]["type"] == "server_busy"
        assert "did not move in time" in error["error"]["message"]
        assert b.kinds()[-1] == "[DONE]"
    else:
        assert error["error_type"] == "server_busy" and error["retry_after_s"] >= 1
        assert "did not move in time" in error["message"]
        assert b.kinds()[-1] == "error"
    assert "a question too late" not in tight.asked()


# -- keep-alive --------------------------------------------------------------------------------


def test_slow_steps_send_pings_on_every_surface(wide: Env) -> None:
    wide.backend.delay_s = 0.3  # every piece takes longer than keepalive_s (0.2 s)

    async def scenario() -> list[Call]:
        async with client() as c:
            calls = [Call(wide.surfaces[name], f"hello from {name}") for name in SURFACES]
            return list(await asyncio.gather(*(call.run(c, wide.url) for call in calls)))

    for name, call in zip(SURFACES, go(scenario()), strict=True):
        assert call.status == 200 and call.text == echo(f"hello from {name}"), name
        assert call.finished_at is not None and not call.places, name
        pieces = [item.t for item in call.items if item.kind in ("text_delta", "chunk")]
        between = [t for t in call.pings if pieces[0] < t < pieces[-1]]
        assert len(between) >= 2, (name, call.kinds())


def test_quick_steps_send_no_pings(wide: Env) -> None:
    server = wide.app.state.runtime.settings.server
    keepalive, server.keepalive_s = server.keepalive_s, 2.0  # far above any quick step

    async def scenario() -> list[Call]:
        async with client() as c:
            return [await Call(wide.surfaces[name], "quick").run(c, wide.url) for name in SURFACES]

    try:
        calls = go(scenario())
    finally:
        server.keepalive_s = keepalive
    for call in calls:
        assert call.finished_at is not None and call.content_count >= 3 and call.pings == []


# -- clients that leave ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SURFACES)
def test_a_client_that_leaves_the_line_gives_its_place_back(tight: Env, name: str) -> None:
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.15

    async def scenario() -> tuple[Call, Call, bool, Call]:
        async with client() as c:
            a, ta = await _one_running(tight, c, surface)
            b = Call(surface, "a question left in line", leave_when=lambda call: bool(call.places))
            await b.run(c, tight.url)
            await until(lambda: tight.state() == (1, 0), 2, "the place in line to be given back")
            a_still_running = a.finished_at is None
            await ta
            tight.backend.delay_s = 0.0
            after = await Call(surface, "third question").run(c, tight.url)
            return a, b, a_still_running, after

    a, b, a_still_running, after = go(scenario())
    assert b.left and a_still_running
    assert a.text == echo("first question")
    assert after.status == 200 and after.text == echo("third question") and not after.places
    assert "a question left in line" not in tight.asked()  # it never ran


@pytest.mark.parametrize("name", SURFACES)
def test_a_client_that_leaves_mid_answer_lets_the_next_in_line_run(tight: Env, name: str) -> None:
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.1
    long_question = "please " * 40  # 45 pieces: 4.5 s if it ran to the end
    label = METRIC_SURFACE[name]
    before = (tight.turns_metric(label, "cancelled"), tight.turns_metric(label, "ok"))

    async def scenario() -> tuple[Call, Call]:
        async with client() as c:
            a = Call(surface, long_question, leave_when=lambda call: call.content_count >= 2)
            ta = asyncio.create_task(a.run(c, tight.url))
            await until(lambda: a.content_count >= 1, what="the long answer to start")
            b = Call(surface, "second question")
            tb = await _one_waiting(tight, c, b)
            await asyncio.gather(ta, tb)
            return a, b

    a, b = go(scenario())
    assert a.left and a.ended_at is not None
    assert b.finished_at is not None and b.text == echo("second question")
    assert b.finished_at - a.ended_at < 2.0  # the line moved when the client left, not after 4.5 s
    asyncio.run(until(lambda: tight.state() == (0, 0)))
    assert tight.turns_metric(label, "cancelled") == before[0] + 1
    assert tight.turns_metric(label, "ok") == before[1] + 1


@pytest.mark.parametrize("name", SURFACES)
def test_a_queued_turn_whose_client_leaves_mid_answer_gives_its_place_back(tight: Env, name: str) -> None:
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.1

    async def scenario() -> tuple[Call, Call]:
        async with client() as c:
            a, ta = await _one_running(tight, c, surface)
            b = Call(surface, "please " * 40, leave_when=lambda call: call.content_count >= 1)
            tb = await _one_waiting(tight, c, b)
            await asyncio.gather(ta, tb)
            await until(lambda: tight.state() == (0, 0), 2, "the gate to empty after the client left")
            return a, b

    a, b = go(scenario())
    assert b.left and b.places and b.content_count == 1


@pytest.mark.parametrize("name", SURFACES)
def test_a_client_that_leaves_as_its_turn_starts_gives_its_place_back(tight: Env, name: str) -> None:
    """The place is granted and the first step runs when the client goes: the step's thread
    cannot be interrupted, yet the place must come back and the next turn must run."""
    surface = tight.surfaces[name]
    tight.backend.delay_s = 0.25

    async def scenario() -> tuple[Call, Call]:
        async with client() as c:
            a, ta = await _one_running(tight, c, surface, "a")
            b = Call(surface, "bee question")
            tb = await _one_waiting(tight, c, b)
            await ta
            await asyncio.sleep(0.08)  # b's turn started and its first piece is on its way
            assert tight.state() == (1, 0) and "bee question" in tight.asked()
            tb.cancel()
            await asyncio.gather(tb, return_exceptions=True)
            await until(lambda: tight.state() == (0, 0), 3, "the place of the client that left")
            tight.backend.delay_s = 0.0
            after = await Call(surface, "third question").run(c, tight.url)
            return b, after

    b, after = go(scenario())
    assert b.content_count == 0 and b.finished_at is None
    assert after.status == 200 and after.text == echo("third question")


# -- floods ------------------------------------------------------------------------------------


def _mixed(env: Env, n: int) -> list[Call]:
    kinds = [("api", True), ("api", False), ("v1", True), ("v1", False), ("widget", True)]
    return [Call(env.surfaces[kinds[i % len(kinds)][0]], f"question from learner {i}",
                 stream=kinds[i % len(kinds)][1]) for i in range(n)]


async def _flood(env: Env, calls: list[Call]) -> list[tuple[int, int]]:
    """All calls at once; the gate's state sampled meanwhile."""
    samples: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            samples.append(env.state())
            await asyncio.sleep(0.002)

    async with client() as c:
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(call.run(c, env.url) for call in calls))
        done.set()
        await sampler
    return samples


def _answered(call: Call, i: int) -> None:
    assert call.status == 200, (i, call.status, call.body)
    assert call.text == echo(f"question from learner {i}"), (i, call.items, call.body)
    assert not call.errors, (i, call.errors)
    if call.stream:
        assert call.finished_at is not None, (i, call.kinds())


def test_sixteen_learners_at_once_with_room_in_line_all_get_answers(wide: Env) -> None:
    wide.backend.delay_s = 0.02
    calls = _mixed(wide, 16)
    samples = go(_flood(wide, calls))
    for i, call in enumerate(calls):
        _answered(call, i)
    assert max(running for running, _ in samples) == 4  # the limit was reached and held
    assert max(waiting for _, waiting in samples) >= 1
    assert any(call.places for call in calls)  # streamed turns in line heard their place
    asked = wide.asked()
    assert sorted(q for q in asked if q.startswith("question from learner")) == sorted(
        f"question from learner {i}" for i in range(16))


def test_sixteen_learners_at_once_with_a_small_line_get_answers_or_429(tight: Env) -> None:
    tight.backend.delay_s = 0.05
    calls = _mixed(tight, 16)
    samples = go(_flood(tight, calls))
    statuses = [call.status for call in calls]
    assert set(statuses) <= {200, 429}, statuses
    answered = [i for i, call in enumerate(calls) if call.status == 200]
    refused = [call for call in calls if call.status == 429]
    assert len(answered) >= 2 and refused, statuses
    for i in answered:
        _answered(calls[i], i)
    for call in refused:
        _assert_busy(call, call.surface.name)
    assert max(running for running, _ in samples) == 1
    assert max(waiting for _, waiting in samples) <= 1
    assert sorted(q for q in tight.asked()[-len(answered):]) == sorted(
        f"question from learner {i}" for i in answered)
