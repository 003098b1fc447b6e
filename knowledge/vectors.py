"""One FAISS file per collection: ``IndexIDMap2(IndexFlatIP)`` over L2-normalised vectors.

Writes go to a temporary file that is fsynced and then ``os.replace``d, so a crash leaves
either the old index or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import faiss
import numpy as np

from knowledge.errors import IndexCorrupt

faiss.omp_set_num_threads(1)  # one thread per query: predictable latency on a shared CPU


class VectorIndex:
    def __init__(self, index: faiss.Index, path: Path) -> None:
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

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray | list[int]) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        return int(self.index.remove_ids(ids)) if len(ids) else 0

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

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        try:
            faiss.write_index(self.index, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is replaced (another process ingested)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
