"""An on-disk cache of text embeddings, so retraining (more rows, another seed, the benchmark
after set-up) embeds only texts it has not seen, and an interrupted run resumes.

One ``.npz`` per embedder and text cut-off under ``settings.cache_dir/text-embeddings``: the
SHA-1 of each (cut) text and its vector. Written to a temporary file and renamed, so a crash
never leaves a broken cache; an unreadable cache is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _digest(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


class EmbeddingCache:
    def __init__(self, folder: Path, embedder_name: str, max_chars: int, dim: int) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder_name)[:80]
        self.path = Path(folder) / f"{safe}-{max_chars}.npz"
        self.dim = dim
        self._index: dict[bytes, int] = {}
        self._vectors: list[np.ndarray] = []
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"], np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError):
            return  # unreadable: start afresh, the next save replaces it
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            return
        self._vectors = list(vectors)
        self._index = {bytes(k): i for i, k in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._vectors)

    def lookup(self, texts: Sequence[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """(position → cached vector, positions still to embed)."""
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for i, text in enumerate(texts):
            slot = self._index.get(_digest(text))
            if slot is None:
                missing.append(i)
            else:
                found[i] = self._vectors[slot]
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
