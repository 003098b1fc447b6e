"""``knowledge.embedding_cache``: the one embedding cache the router and text classification share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knowledge.embedding_cache import CachedEmbedder, EmbeddingCache, write_vectors


class FakeEmbedder:
    dim = 3

    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.queries: list[str] = []
        self.documents: list[str] = []

    def _vectors(self, texts: Sequence[str], offset: float) -> np.ndarray:
        return np.array([[len(t), offset, 1.0] for t in texts], dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.queries += texts
        return self._vectors(texts, 1.0)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.documents += texts
        return self._vectors(texts, 2.0)


def test_embeds_each_unseen_text_once_and_reuses_the_file(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    cached = CachedEmbedder(embedder, tmp_path / "c.npz", kind="query", batch=2)
    vectors = cached.embed(["a", "bb", "a", "ccc"])
    assert embedder.queries == ["a", "bb", "ccc"] and embedder.documents == []
    assert vectors[:, 0].tolist() == [1, 2, 1, 3] and vectors.dtype == np.float32
    assert (cached.hits, cached.misses) == (0, 3)

    fresh = FakeEmbedder()
    again = CachedEmbedder(fresh, tmp_path / "c.npz", kind="query")
    assert np.array_equal(again.embed(["ccc", "a"]), vectors[[3, 0]])
    assert fresh.queries == [] and again.hits == 2


def test_another_embedder_or_format_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    CachedEmbedder(FakeEmbedder("one"), path).embed(["a"])
    other = FakeEmbedder("two")
    CachedEmbedder(other, path).embed(["a"])
    assert other.documents == ["a"]  # one's vectors never serve two
    np.savez(path, keys=np.array(["0" * 64], dtype="U64"), vectors=np.ones((1, 3)),
             embedder=np.array("two"))  # the router's former format
    assert len(EmbeddingCache(path, "two", 3)) == 0
    path.write_bytes(b"not a zip")
    third = FakeEmbedder("two")
    assert CachedEmbedder(third, path).embed(["a"]).shape == (1, 3) and third.documents == ["a"]
    assert len(EmbeddingCache(path, "two", 3)) == 1  # rewritten


def test_seeds_are_read_but_never_copied_and_memory_only_writes_nothing(tmp_path: Path) -> None:
    seed = write_vectors(tmp_path / "seed.npz", ["s"], np.full((1, 3), 0.5), "fake",
                         dtype=np.float16, compressed=True)
    embedder = FakeEmbedder()
    cached = CachedEmbedder(embedder, tmp_path / "c.npz", seeds=[seed])
    assert cached.embed(["s"]).tolist() == [[0.5, 0.5, 0.5]] and embedder.documents == []
    assert not (tmp_path / "c.npz").exists()  # nothing added, nothing written
    memory = CachedEmbedder(embedder, None)
    memory.embed(["x", "x"])
    assert memory.path is None and embedder.documents == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.npz"]
