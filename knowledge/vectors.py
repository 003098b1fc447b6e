"""One FAISS index per collection: ``IndexIDMap2(IndexFlatIP)`` over L2-normalised vectors,
and the vectors' form in the database (``to_blob``/``from_blob``: float32 little-endian bytes).

Writes go through ``knowledge.atomic`` (a temporary file renamed over the index), so a crash
leaves either the old index or the new one, never half of one. The files are a replica's cache
of the vectors in the database (``knowledge.cache``).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import faiss
import numpy as np

from knowledge.atomic import atomic_path
from knowledge.errors import IndexCorrupt

faiss.omp_set_num_threads(1)  # one thread per query: predictable latency on a shared CPU

_BLOB = np.dtype("<f4")


def to_blob(vector: np.ndarray) -> bytes:
    """A unit vector as the database stores it (``ChunkRow.vector``/``vector2``)."""
    return np.ascontiguousarray(vector, dtype=_BLOB).tobytes()


def from_blob(blob: bytes | None, dim: int) -> np.ndarray | None:
    """The vector of ``to_blob``; None when the bytes are not ``dim`` floats."""
    if blob is None or len(blob) != dim * _BLOB.itemsize:
        return None
    return np.frombuffer(blob, dtype=_BLOB).astype(np.float32)


class VectorIndex:
    def __init__(self, index: faiss.IndexIDMap2, path: Path) -> None:
        self.index = index
        self.path = path

    @classmethod
    def empty(cls, path: Path, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), path)

    @classmethod
    def open(cls, path: Path, dim: int) -> VectorIndex:
        """The index on disk, or an empty one when the file does not exist yet."""
        if not path.exists():
            return cls.empty(path, dim)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"the index file {path.name} cannot be read ({exc}); "
                               f"run `mentorly kb rebuild`") from None
        if index.d != dim or not isinstance(index, faiss.IndexIDMap2):
            raise IndexCorrupt(f"the index file {path.name} does not match its collection "
                               f"(dimension {index.d}, expected {dim}); run `mentorly kb rebuild`")
        return cls(index, path)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def copy(self) -> VectorIndex:
        """An independent copy (a published snapshot is never changed: changes go to a copy)."""
        return VectorIndex(cast(faiss.IndexIDMap2, faiss.clone_index(self.index)), self.path)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray | list[int]) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        # faiss wraps remove_ids to take an id array as well; its stubs declare IDSelector only
        return int(self.index.remove_ids(ids)) if len(ids) else 0  # type: ignore[arg-type]

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                                        min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def scores_for(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Inner products of ``query`` with stored vectors (ids not in the index are left out)."""
        out: dict[int, float] = {}
        for i in ids:
            try:
                out[i] = float(np.dot(self.index.reconstruct(int(i)), query))
            except RuntimeError:
                continue
        return out

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The stored vectors of ``ids`` (ids not in the index are left out)."""
        out: dict[int, np.ndarray] = {}
        for i in ids:
            try:
                out[i] = np.asarray(self.index.reconstruct(int(i)), dtype=np.float32)
            except RuntimeError:
                continue
        return out

    def save(self, *, durable: bool = True) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path, private=True, durable=durable) as tmp:  # owner-only
            faiss.write_index(self.index, str(tmp))


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is replaced (another process ingested)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
