"""Rebuild the packaged embedding seed of the default sentiment training reviews:
``python -m tools.text_classification.seed`` (see ``embedding_cache``)."""

from __future__ import annotations

from pathlib import Path

from assistant.config import get_settings
from knowledge.embedders import shared_embedder

from .embedding_cache import write_seed
from .language import MAX_CLASSIFY_CHARS
from .sentiment import DEFAULT_TRAIN_SIZE, split_reviews
from .training import embed_texts


def build_sentiment_seed() -> Path:
    """Embed the default sentiment training reviews (through the user's cache, so it is quick
    after a ``models prepare``) and write the seed."""
    settings = get_settings()
    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    train_pool, _ = split_reviews()
    texts = [text[:MAX_CLASSIFY_CHARS] for text, _ in train_pool[:DEFAULT_TRAIN_SIZE]]
    vectors = embed_texts(embedder, texts, cache_dir=settings.cache_dir / "text-embeddings")
    return write_seed(texts, vectors, embedder.name, MAX_CLASSIFY_CHARS)


if __name__ == "__main__":
    print(build_sentiment_seed())
