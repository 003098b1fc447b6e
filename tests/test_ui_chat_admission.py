"""The chat page under load: its turns pass the same turn gate as the API. A full gate is a
polite message in the page's language; a turn in line shows its place, then its answer; a turn
that leaves (the tab closed, the generator dropped) gives its place back."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.admission import place_message
from assistant.llm.fake import FakeBackend
from assistant.runtime import Runtime
from tests.support.live_api import make_runtime
from tests.support.turn_calls import echo
from tests.test_ui_support import answer_text
from ui.chat import make_chat_fn


def runtime_with_gate(home: Path, active: int, queue: int, **server: Any) -> tuple[Runtime, FakeBackend]:
    backend = FakeBackend()
    runtime = make_runtime(home, backend=backend,
                           server={"max_active_turns": active, "turn_queue": queue, **server})
    return runtime, backend


def state(runtime: Runtime) -> tuple[int, int]:
    s = runtime.turn_gate.state()
    return s.running, s.waiting


@pytest.mark.parametrize(("lang", "pattern"), [
    ("en", r"Many learners are asking right now\. Please try again in (\d+) s\."),
    ("zh", r"现在提问的同学很多，请在 (\d+) 秒后再试。"),
])
def test_a_full_gate_answers_with_the_busy_message(tmp_path: Path, lang: str, pattern: str) -> None:
    runtime, backend = runtime_with_gate(tmp_path, 1, 0)
    held = runtime.turn_gate.admit()
    outputs = list(make_chat_fn(runtime)("What is gravity?", [], lang))
    assert len(outputs) == 1
    match = re.fullmatch(pattern, answer_text(outputs[0]))
    assert match and int(match.group(1)) >= 1, answer_text(outputs[0])
    assert backend.requests == []  # nothing ran
    assert state(runtime) == (1, 0)
    held.release()
    final = list(make_chat_fn(runtime)("What is gravity?", [], lang))[-1]
    assert answer_text(final) == echo("What is gravity?")


@pytest.mark.parametrize(("lang", "question"), [("en", "What is gravity?"), ("zh", "什么是重力？")])
def test_a_turn_in_line_shows_its_place_then_its_answer(tmp_path: Path, lang: str, question: str) -> None:
    runtime, backend = runtime_with_gate(tmp_path, 1, 1)
    held = runtime.turn_gate.admit()
    seen: list[tuple[float, str]] = []
    finished = threading.Event()

    def page() -> None:
        for output in make_chat_fn(runtime)(question, [], lang):
            seen.append((time.monotonic(), answer_text(output)))
        finished.set()

    browser = threading.Thread(target=page)
    browser.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen, "the page showed nothing while the turn waited"
    time.sleep(0.2)
    assert not finished.is_set() and backend.requests == [] and state(runtime) == (1, 1)
    released_at = time.monotonic()
    held.release()
    assert finished.wait(10)
    browser.join(5)

    waiting = [text for t, text in seen if t < released_at]
    answer = [(t, text) for t, text in seen if t >= released_at]
    assert waiting and set(waiting) == {waiting[0]}
    retry = int(re.findall(r"\d+", waiting[0])[-1])
    assert waiting[0] == place_message(1, retry, lang)
    if lang == "zh":
        assert waiting[0].startswith("现在提问的同学很多。下一个就轮到你")
    assert answer and answer[-1][1] == echo(question)
    assert all(place_message(1, retry, lang) != text for _t, text in answer)
    assert len(backend.requests) == 1
    assert state(runtime) == (0, 0)


def test_a_page_that_stops_reading_while_in_line_gives_its_place_back(tmp_path: Path) -> None:
    runtime, backend = runtime_with_gate(tmp_path, 1, 1)
    held = runtime.turn_gate.admit()
    chat: Iterator[Any] = make_chat_fn(runtime)("What is gravity?", [], "en")
    first = answer_text(next(chat))
    assert first.startswith("Many learners are asking right now. Your turn is next")
    assert state(runtime) == (1, 1)
    chat.close()  # the learner closed the tab: Gradio drops the generator
    assert state(runtime) == (1, 0)
    held.release()
    assert state(runtime) == (0, 0)  # nobody holds a place that no turn uses
    assert backend.requests == []
    final = list(make_chat_fn(runtime)("Still there?", [], "en"))[-1]
    assert answer_text(final) == echo("Still there?")


def test_a_page_turn_holds_its_place_while_it_runs_and_gives_it_back_when_dropped(tmp_path: Path) -> None:
    runtime, _backend = runtime_with_gate(tmp_path, 1, 1)
    chat: Iterator[Any] = make_chat_fn(runtime)("What is gravity?", [], "en")
    next(chat)  # the first piece of the answer
    assert state(runtime) == (1, 0)
    chat.close()
    assert state(runtime) == (0, 0)
    done = list(make_chat_fn(runtime)("What is gravity?", [], "en"))
    assert answer_text(done[-1]) == echo("What is gravity?") and state(runtime) == (0, 0)


def test_a_page_turn_that_waits_too_long_is_told_so(tmp_path: Path) -> None:
    runtime, backend = runtime_with_gate(tmp_path, 1, 1, queue_timeout_s=0.3)
    held = runtime.turn_gate.admit()
    started = time.monotonic()
    outputs = [answer_text(o) for o in make_chat_fn(runtime)("What is gravity?", [], "zh")]
    assert 0.25 <= time.monotonic() - started < 5
    assert outputs[0].startswith("现在提问的同学很多。下一个就轮到你")
    assert re.fullmatch(r"现在提问的同学很多，排队时间过长，请在 \d+ 秒后再试。", outputs[-1])
    assert backend.requests == [] and state(runtime) == (1, 0)
    held.release()
