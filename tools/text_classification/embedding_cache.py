"""An on-disk cache of text embeddings, so retraining (more rows, another seed, the benchmark
after set-up) embeds only texts it has not seen, and an interrupted run resumes.

One ``.npz`` per embedder and text cut-off under ``settings.cache_dir/text-embeddings``: the
SHA-1 of each (cut) text and its vector. Written to a temporary file and renamed, so a crash
never leaves a broken cache; an unreadable cache is ignored and rebuilt.

A packaged seed (``data/seed-<embedder>-<cut-off>.npz``, float16) holds the vectors of the
default sentiment training reviews, so ``mentorly models prepare`` (hence the first
``make serve``) trains the sentiment model in seconds instead of embedding 2,400 reviews for
about five minutes. It is used only for the exact embedder and cut-off it was made with;
``python -m tools.text_classification.embedding_cache`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SEED_DIR = Path(__file__).parent / "data"


def _safe(embedder_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder_name)[:80]


def seed_path(embedder_name: str, max_chars: int) -> Path:
    return SEED_DIR / f"seed-{_safe(embedder_name)}-{max_chars}.npz"


def _digest(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def _key(stored: bytes) -> bytes:
    """A digest as stored: numpy's ``S20`` drops trailing NUL bytes, so put them back (about
    one digest in 256 ends with one, and would otherwise never be found again)."""
    return bytes(stored).ljust(20, b"\0")


class EmbeddingCache:
    def __init__(self, folder: Path, embedder_name: str, max_chars: int, dim: int) -> None:
        self.path = Path(folder) / f"{_safe(embedder_name)}-{max_chars}.npz"
        self.dim = dim
        self._dirty = False
        keys, vectors = self._read(self.path)
        self._vectors: list[np.ndarray] = list(vectors)
        self._index: dict[bytes, int] = {_key(k): i for i, k in enumerate(keys)}
        # the packaged seed is looked up after this cache and never copied into it
        seed_keys, self._seed = self._read(seed_path(embedder_name, max_chars))
        self._seed_index = {_key(k): i for i, k in enumerate(seed_keys)}

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of ``path``; none when it is missing or unreadable (start afresh:
        the next save replaces it)."""
        empty = (np.zeros(0, dtype="S20"), np.zeros((0, self.dim), dtype=np.float32))
        if not path.is_file():
            return empty
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], np.asarray(data["vectors"])
        except (OSError, ValueError, KeyError):
            return empty
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            return empty
        return keys, vectors

    def __len__(self) -> int:
        """Entries of this cache (the packaged seed not counted)."""
        return len(self._vectors)

    def lookup(self, texts: Sequence[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """(position → cached vector, positions still to embed)."""
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for i, text in enumerate(texts):
            key = _digest(text)
            slot = self._index.get(key)
            if slot is not None:
                found[i] = np.asarray(self._vectors[slot], dtype=np.float32)
            elif (seeded := self._seed_index.get(key)) is not None:
                found[i] = self._seed[seeded].astype(np.float32)
            else:
                missing.append(i)
        return found, missing

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            key = _digest(text)
            if key not in self._index:
                self._index[key] = len(self._vectors)
                self._vectors.append(np.asarray(vector, dtype=np.float32))
                self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._index), dtype="S20")
        order = np.array(list(self._index.values()), dtype=np.int64)
        vectors = np.stack(self._vectors)[order] if len(order) else np.zeros((0, self.dim))
        fd, tmp = tempfile.mkstemp(prefix=".emb-", suffix=".npz", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=keys, vectors=vectors.astype(np.float32))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dirty = False


def write_seed(texts: Sequence[str], vectors: np.ndarray, embedder_name: str,
               max_chars: int) -> Path:
    """Store ``texts``' vectors (already cut to ``max_chars``) as the packaged seed."""
    path = seed_path(embedder_name, max_chars)
    keys = np.array([_digest(t) for t in texts], dtype="S20")
    np.savez_compressed(path, keys=keys, vectors=np.asarray(vectors, dtype=np.float16))
    return path


def build_sentiment_seed() -> Path:
    """Embed the default sentiment training reviews (through the user's cache, so it is quick
    after a ``models prepare``) and write the seed."""
    from assistant.config import get_settings
    from knowledge.embedders import shared_embedder
    from tools.text_classification.language import MAX_CLASSIFY_CHARS
    from tools.text_classification.sentiment import DEFAULT_TRAIN_SIZE, split_reviews
    from tools.text_classification.training import embed_texts

    settings = get_settings()
    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    train_pool, _ = split_reviews()
    texts = [text[:MAX_CLASSIFY_CHARS] for text, _ in train_pool[:DEFAULT_TRAIN_SIZE]]
    vectors = embed_texts(embedder, texts, cache_dir=settings.cache_dir / "text-embeddings")
    return write_seed(texts, vectors, embedder.name, MAX_CLASSIFY_CHARS)


if __name__ == "__main__":
    print(build_sentiment_seed())
