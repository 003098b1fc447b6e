"""Text embeddings cached on disk, so a restart or a retrain embeds only texts it has not seen.

``EmbeddingCache`` is the store: the SHA-1 of each text and its float32 vector in one ``.npz``
file (``keys``: ``S20``, ``vectors``: ``(n, dim)``, ``embedder``: the embedder's name), written
to a temporary file and renamed, so a crash never leaves a broken cache. A file that is
unreadable, of another shape or format, or written for another embedder is ignored and replaced
on the next save. Read-only *seed* files in the same format (float16 allowed, ``embedder``
optional) are looked up after the cache and never copied into it. Without a path the cache
lives in memory only.

``CachedEmbedder`` embeds through it: one kind of text (queries or documents: the e5 models
prefix them differently, so their vectors must not share a cache), in batches, saving every
few batches so that a stopped run resumes.

The router (example utterances) and text classification (training texts) both use it; each
chooses its own file name.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from knowledge.atomic import atomic_path
from knowledge.embedders import Embedder

log = logging.getLogger(__name__)

KEY_BYTES = 20  # SHA-1


def file_slug(embedder_name: str) -> str:
    """``embedder_name`` made safe (and short enough) for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder_name)[:80]


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def _stored_key(stored: bytes) -> bytes:
    """A key as read back: numpy's ``S20`` drops trailing NUL bytes, so put them back (about
    one digest in 256 ends with one, and would otherwise never be found again)."""
    return bytes(stored).ljust(KEY_BYTES, b"\0")


def write_vectors(path: Path, texts: Sequence[str], vectors: np.ndarray, embedder_name: str, *,
                  dtype: type[np.floating] = np.float32, compressed: bool = False) -> Path:
    """Write ``texts``' vectors in the cache format (a seed: float16, compressed)."""
    keys = np.array([text_key(t) for t in texts], dtype=f"S{KEY_BYTES}")
    save = np.savez_compressed if compressed else np.savez
    save(path, keys=keys, vectors=np.asarray(vectors, dtype=dtype),
         embedder=np.array(embedder_name))
    return path


class EmbeddingCache:
    """Vectors of one embedder by the SHA-1 of their text (see the module docstring)."""

    def __init__(self, path: Path | None, embedder_name: str, dim: int, *,
                 seeds: Sequence[Path] = ()) -> None:
        self.path = None if path is None else Path(path)
        self.embedder_name = embedder_name
        self.dim = dim
        self._seed_paths = [Path(p) for p in seeds]
        self._loaded = False
        self._dirty = False
        self._vectors: list[np.ndarray] = []
        self._index: dict[bytes, int] = {}
        self._seeds: list[tuple[dict[bytes, int], np.ndarray]] = []

    def _load(self) -> None:
        """Read the cache and the seeds on first use."""
        if self._loaded:
            return
        self._loaded = True
        if self.path is not None:
            keys, vectors = self._read(self.path)
            self._vectors = [np.asarray(v, dtype=np.float32) for v in vectors]
            self._index = {_stored_key(k): i for i, k in enumerate(keys)}
        for seed in self._seed_paths:
            keys, vectors = self._read(seed)
            if len(keys):
                self._seeds.append(({_stored_key(k): i for i, k in enumerate(keys)}, vectors))

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(keys, vectors) of ``path``; none when it is missing or cannot serve this cache."""
        empty = (np.zeros(0, dtype=f"S{KEY_BYTES}"), np.zeros((0, self.dim), dtype=np.float32))
        if not path.is_file():
            return empty
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], np.asarray(data["vectors"])
                embedder = str(data["embedder"]) if "embedder" in data.files else None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable embedding cache %s (%s); it will be rebuilt", path, exc)
            return empty
        if (keys.dtype.kind != "S" or keys.dtype.itemsize != KEY_BYTES or vectors.ndim != 2
                or vectors.shape[1] != self.dim or len(keys) != len(vectors)):
            log.warning("ignoring embedding cache %s: another format or dimension; it will be "
                        "rebuilt", path)
            return empty
        if embedder is not None and embedder != self.embedder_name:
            return empty  # another model's vectors never mix with these
        return keys, vectors

    def __len__(self) -> int:
        """Entries of this cache (the seeds not counted)."""
        self._load()
        return len(self._vectors)

    def lookup(self, texts: Sequence[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """(position → cached vector, positions still to embed)."""
        self._load()
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for i, text in enumerate(texts):
            key = text_key(text)
            slot = self._index.get(key)
            if slot is not None:
                found[i] = self._vectors[slot]
                continue
            for index, vectors in self._seeds:
                if (seeded := index.get(key)) is not None:
                    found[i] = vectors[seeded].astype(np.float32)
                    break
            else:
                missing.append(i)
        return found, missing

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._load()
        for text, vector in zip(texts, vectors, strict=True):
            key = text_key(text)
            if key not in self._index:
                self._index[key] = len(self._vectors)
                self._vectors.append(np.asarray(vector, dtype=np.float32))
                self._dirty = True

    def save(self) -> None:
        """Write the cache (temporary file, then rename) when something was added."""
        if not self._dirty or self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        order = np.array(list(self._index.values()), dtype=np.int64)
        keys = np.array(list(self._index), dtype=f"S{KEY_BYTES}")
        vectors = (np.stack(self._vectors)[order] if len(order)
                   else np.zeros((0, self.dim), dtype=np.float32))
        # A cache: atomic, not durable (a write lost to a power cut only costs recomputing).
        with atomic_path(self.path, durable=False, private=True) as tmp, tmp.open("wb") as fh:
            np.savez(fh, keys=keys, vectors=vectors.astype(np.float32),
                     embedder=np.array(self.embedder_name))
        self._dirty = False


class CachedEmbedder:
    """``embedder``'s queries or documents through an ``EmbeddingCache``."""

    def __init__(self, embedder: Embedder, path: Path | None, *,
                 kind: Literal["query", "document"] = "document", seeds: Sequence[Path] = (),
                 batch: int = 32, save_every: int = 20) -> None:
        self.embedder = embedder
        self.kind = kind
        self._path = None if path is None else Path(path)
        self._seeds = list(seeds)
        self._cache: EmbeddingCache | None = None
        self.batch = max(batch, 1)
        self.save_every = max(save_every, 1)  # batches between saves
        self.hits = 0  # texts served from the cache or a seed
        self.misses = 0  # distinct texts embedded

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def cache(self) -> EmbeddingCache:
        """Made on first use: an embedder may learn its dimension only when its model loads."""
        if self._cache is None:
            self._cache = EmbeddingCache(self._path, self.embedder.name, self.embedder.dim,
                                         seeds=self._seeds)
        return self._cache

    def embed(self, texts: Sequence[str], *, progress: bool = False,
              desc: str = "embedding") -> np.ndarray:
        """The vectors of ``texts`` (float32, one row each), embedding only the unseen ones."""
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        found, missing = self.cache.lookup(texts)
        for i, vector in found.items():
            out[i] = vector
        todo: dict[str, list[int]] = {}  # each distinct text once
        for i in missing:
            todo.setdefault(texts[i], []).append(i)
        unique = list(todo)
        self.hits += len(found)
        self.misses += len(unique)
        embed = (self.embedder.embed_queries if self.kind == "query"
                 else self.embedder.embed_documents)
        with tqdm(total=len(texts), initial=len(found), desc=desc, unit="text",
                  disable=not progress) as bar:
            for n, start in enumerate(range(0, len(unique), self.batch), 1):
                part = unique[start:start + self.batch]
                vectors = np.asarray(embed(part), dtype=np.float32)
                for text, vector in zip(part, vectors, strict=True):
                    out[todo[text]] = vector
                self.cache.add(part, vectors)
                if n % self.save_every == 0:
                    self.cache.save()
                bar.update(sum(len(todo[t]) for t in part))
        self.cache.save()
        return out
