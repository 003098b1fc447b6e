"""Where text classification caches its embeddings (``knowledge.embedding_cache`` does the
caching), so retraining (more rows, another seed, the benchmark after set-up) embeds only texts
it has not seen, and an interrupted run resumes.

One ``.npz`` per embedder and text cut-off under ``settings.cache_dir/text-embeddings``.

A packaged seed (``data/seed-<embedder>-<cut-off>.npz``, float16) holds the vectors of the
default sentiment training reviews, so ``mentorly models prepare`` (hence the first
``make serve``) trains the sentiment model in seconds instead of embedding 2,400 reviews for
about five minutes. It is used only for the exact embedder and cut-off it was made with;
``python -m tools.text_classification.seed`` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from knowledge.embedders import Embedder
from knowledge.embedding_cache import CachedEmbedder, EmbeddingCache, file_slug, write_vectors

SEED_DIR = Path(__file__).parent / "data"


def seed_path(embedder_name: str, max_chars: int) -> Path:
    return SEED_DIR / f"seed-{file_slug(embedder_name)}-{max_chars}.npz"


def cache_path(folder: Path, embedder_name: str, max_chars: int) -> Path:
    return Path(folder) / f"{file_slug(embedder_name)}-{max_chars}.npz"


def text_cache(folder: Path, embedder_name: str, max_chars: int, dim: int) -> EmbeddingCache:
    """The cache of texts cut to ``max_chars`` in ``folder``, backed by the packaged seed."""
    return EmbeddingCache(cache_path(folder, embedder_name, max_chars), embedder_name, dim,
                          seeds=[seed_path(embedder_name, max_chars)])


def cached_embedder(embedder: Embedder, folder: Path | None, max_chars: int,
                    batch: int = 32) -> CachedEmbedder:
    """Documents embedded through the cache in ``folder`` and the seed (no folder: neither)."""
    if folder is None:
        return CachedEmbedder(embedder, None, kind="document", batch=batch)
    return CachedEmbedder(embedder, cache_path(folder, embedder.name, max_chars), kind="document",
                          seeds=[seed_path(embedder.name, max_chars)], batch=batch)


def write_seed(texts: Sequence[str], vectors: np.ndarray, embedder_name: str,
               max_chars: int) -> Path:
    """Store ``texts``' vectors (already cut to ``max_chars``) as the packaged seed."""
    return write_vectors(seed_path(embedder_name, max_chars), texts, vectors, embedder_name,
                         dtype=np.float16, compressed=True)
