"""The embedded backend on the real packaged model (Qwen2.5-Coder-0.5B Q4_K_M via xllamacpp).

The model is assembled and loaded once per session (shared through the factory); every
generation is short and greedy (temperature 0) so the run is quick and repeatable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.errors import InvalidInput, ModelError
from assistant.llm.base import ChatBackend, ChatChunk
from assistant.llm.factory import make_backend
from assistant.llm.local import LocalBackend
from assistant.llm.model_files import MODEL_NAME, MODEL_SIZE, is_verified

pytestmark = pytest.mark.slow

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "classify_text",
            "description": "Classify the sentiment of a text",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        },
    }
]


@pytest.fixture(scope="module")
def local() -> LocalBackend:
    backend = make_backend(load_settings(llm={"backend": "local", "threads": 1}))
    assert isinstance(backend, LocalBackend)
    return backend


def test_prepared_and_loaded_once(local: LocalBackend) -> None:
    assert isinstance(local, ChatBackend)
    assert local.model == MODEL_NAME
    assert local.path.stat().st_size == MODEL_SIZE and is_verified(local.path)
    again = make_backend(load_settings(llm={"backend": "local", "threads": 1}))
    assert again is local  # one instance per (model, threads, n_ctx, parallel, cache)


def test_short_chat(local: LocalBackend) -> None:
    result = local.chat(
        [{"role": "user", "content": "What is 2 + 2? Answer with the number only."}],
        max_tokens=8,
        temperature=0.0,
    )
    assert "4" in result.content
    assert result.tool_calls == []
    assert result.usage.prompt_tokens > 10 and 0 < result.usage.completion_tokens <= 8
    assert result.model == MODEL_NAME


def test_stream_yields_tokens_as_they_are_decoded(local: LocalBackend) -> None:
    arrivals: list[tuple[float, ChatChunk]] = []
    start = time.perf_counter()
    for chunk in local.stream(
        [{"role": "user", "content": "Name three colours, separated by commas."}],
        max_tokens=16,
        temperature=0.0,
    ):
        arrivals.append((time.perf_counter() - start, chunk))
    texts = [(t, c.text) for t, c in arrivals if c.text]
    assert len(texts) > 3
    final = arrivals[-1][1].final
    assert final is not None and all(c.final is None for _, c in arrivals[:-1])
    assert "".join(text for _, text in texts) == final.content
    assert final.usage.completion_tokens >= len(texts) and final.usage.prompt_tokens > 0
    # Real streaming: pieces arrive spread over the decode, not all at once at the end.
    first, last = texts[0][0], texts[-1][0]
    assert last - first > 0.05
    assert first < arrivals[-1][0] - 0.05


def test_json_schema_constrains_the_output(local: LocalBackend) -> None:
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "negative"]},
            "confidence": {"type": "number"},
        },
        "required": ["sentiment", "confidence"],
    }
    result = local.chat(
        [{"role": "user", "content": "Sentiment of: 'I hate waiting in the rain.'"}],
        json_schema=schema,
        max_tokens=40,
        temperature=0.0,
    )
    data = json.loads(result.content)
    assert set(data) == {"sentiment", "confidence"}
    assert data["sentiment"] in ("positive", "negative")
    assert isinstance(data["confidence"], int | float)


def test_tool_call_written_as_text_becomes_a_tool_call(local: LocalBackend) -> None:
    messages = [{"role": "user", "content": "What is the sentiment of: 'I love this course'?"}]
    result = local.chat(messages, tools=TOOLS, max_tokens=48, temperature=0.0)
    assert [c.name for c in result.tool_calls] == ["classify_text"]
    assert "love" in result.tool_calls[0].arguments["text"]
    assert result.finish_reason == "tool_calls"
    chunks = list(local.stream(messages, tools=TOOLS, max_tokens=48, temperature=0.0))
    final = chunks[-1].final
    assert final is not None and [c.name for c in final.tool_calls] == ["classify_text"]
    assert "".join(c.text for c in chunks) == ""  # the call's JSON is not shown as answer text


def test_closing_a_stream_early_cancels_it_and_frees_the_model(local: LocalBackend) -> None:
    stream = local.stream([{"role": "user", "content": "Count from 1 to 200."}], max_tokens=300)
    next(stream)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 10
    while local.in_use and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local.in_use == 0
    started = time.perf_counter()
    assert local.chat([{"role": "user", "content": "Hi"}], max_tokens=2).usage.completion_tokens <= 2
    assert time.perf_counter() - started < 10


def test_concurrent_requests_both_complete(local: LocalBackend) -> None:
    results: list[str] = []

    def ask(q: str) -> None:
        results.append(local.chat([{"role": "user", "content": q}], max_tokens=3, temperature=0.0).content)

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("Say yes.", "Say no.")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and all(results)


class Peak:
    """Samples ``backend.in_use`` in the background; ``peak`` is the most slots seen busy."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend, self.peak = backend, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.backend.in_use)
            time.sleep(0.002)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _race(backend: LocalBackend, prompts: list[str], max_tokens: int) -> list[list[tuple[float, str]]]:
    """Stream ``prompts`` from as many threads released together; each one's timed pieces."""
    barrier = threading.Barrier(len(prompts))
    pieces: list[list[tuple[float, str]]] = [[] for _ in prompts]

    def ask(i: int) -> None:
        barrier.wait()
        for chunk in backend.stream([{"role": "user", "content": prompts[i]}], max_tokens=max_tokens,
                                    temperature=0.0):
            if chunk.text:
                pieces[i].append((time.monotonic(), chunk.text))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return pieces


def test_parallel_slots_write_two_answers_at_once(local: LocalBackend) -> None:
    """Both streams started together produce their first piece before either ends: the slots
    decode together (the old single lock wrote one answer after the other)."""
    assert local.parallel >= 2
    with Peak(local) as peak:
        a, b = _race(local, ["Count from 1 to 100, one number per line.",
                             "List the letters of the alphabet, one per line."], max_tokens=32)
    assert len(a) > 3 and len(b) > 3
    assert max(a[0][0], b[0][0]) < min(a[-1][0], b[-1][0])
    assert peak.peak == 2
    assert local.in_use == 0


def test_closing_one_of_two_streams_frees_only_its_slot(local: LocalBackend) -> None:
    def opened(prompt: str) -> Iterator[ChatChunk]:
        stream = local.stream([{"role": "user", "content": prompt}], max_tokens=300, temperature=0.0)
        while not next(stream).text:
            pass
        return stream

    first = opened("Count from 1 to 300.")
    second = opened("Count from 300 down to 1.")
    try:
        assert local.in_use == 2
        first.close()
        deadline = time.monotonic() + 10
        while local.in_use > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert local.in_use == 1
        more = [chunk.text for chunk, _ in zip(second, range(5), strict=False)]  # still writing
        assert len(more) == 5 and local.in_use == 1
    finally:
        first.close()
        second.close()
    deadline = time.monotonic() + 10
    while local.in_use and time.monotonic() < deadline:
        time.sleep(0.02)
    assert local.in_use == 0


def test_one_slot_serves_two_threads_one_after_the_other(local_model_path: Path) -> None:
    one = LocalBackend(load_settings(llm={"backend": "local", "threads": 1, "parallel": 1,
                                          "n_ctx": 1024, "model_path": local_model_path}),
                       progress=False)
    assert one.parallel == 1
    with Peak(one) as peak:
        a, b = _race(one, ["Say yes.", "Say no."], max_tokens=8)
    assert a and b
    earlier, later = (a, b) if a[0][0] < b[0][0] else (b, a)
    assert later[0][0] > earlier[-1][0]  # not a single piece overlaps
    assert peak.peak == 1 and one.in_use == 0


def test_bad_requests_are_clear_errors(local: LocalBackend) -> None:
    with pytest.raises(InvalidInput, match="no messages"):
        local.chat([])
    with pytest.raises(InvalidInput, match="too long"):
        local.chat([{"role": "user", "content": "word " * (local.n_ctx + 200)}], max_tokens=1)
    with pytest.raises(InvalidInput, match="too long"):
        list(local.stream([{"role": "user", "content": "word " * (local.n_ctx + 200)}], max_tokens=1))


def test_a_file_that_is_not_a_gguf_is_a_model_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="could not load the model .*bogus.gguf"):
        LocalBackend(load_settings(llm={"model_path": bogus}), progress=False)
