"""Train a text classifier on embeddings: read CSV/JSONL, embed with a progress bar,
cross-validate (accuracy, macro-F1), fit a logistic regression, save a versioned artifact."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from assistant.errors import InvalidInput
from knowledge.embedders import Embedder

from .artifacts import LinearTextModel, save_model
from .embedding_cache import cached_embedder
from .language import MAX_CLASSIFY_CHARS

SEED = 0
C = 3.0
"""Inverse regularisation strength: on the sentiment reviews (1,200 / 2,400 / 4,000 training
texts, 1,000 held out) C=3 beat 0.3, 1, 10, 30 and 100 at every size."""
MAX_ROWS = 100_000
BATCH = 32


def read_dataset(path: str | Path) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` from a ``.csv`` (header ``text,label``) or ``.jsonl`` file
    (``{"text": ..., "label": ...}`` per line), UTF-8. Blank rows are skipped."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"training file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise InvalidInput(f"training file must be .csv or .jsonl, not {path.name!r}")
    try:
        raw = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 and retry"
        ) from None
    rows = _csv_rows(raw, path.name) if suffix == ".csv" else _jsonl_rows(raw, path.name)
    texts: list[str] = []
    labels: list[str] = []
    for text, label in rows:
        text, label = " ".join(str(text).split()), " ".join(str(label).split())
        if text and label:
            texts.append(text)
            labels.append(label)
        if len(texts) > MAX_ROWS:
            raise InvalidInput(f"{path.name} has more than {MAX_ROWS} rows")
    if not texts:
        raise InvalidInput(f"{path.name} has no rows with both a text and a label")
    return texts, labels


def _csv_rows(raw: str, name: str) -> list[tuple[Any, Any]]:
    reader = csv.DictReader(raw.splitlines())
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "text" not in columns or "label" not in columns:
        raise InvalidInput(f"{name} needs the columns 'text' and 'label'; found: "
                           f"{', '.join(reader.fieldnames or []) or 'no header'}")
    reader.fieldnames = columns
    try:
        return [(row.get("text") or "", row.get("label") or "") for row in reader]
    except csv.Error as exc:
        raise InvalidInput(f"{name} is not valid CSV: {exc}") from None


def _jsonl_rows(raw: str, name: str) -> list[tuple[Any, Any]]:
    rows: list[tuple[Any, Any]] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name} line {number} is not JSON: {exc.msg}") from None
        if not isinstance(item, dict) or "text" not in item or "label" not in item:
            raise InvalidInput(f"{name} line {number} needs the keys 'text' and 'label'")
        rows.append((item["text"], item["label"]))
    return rows


def check_classes(labels: Sequence[str]) -> Counter[str]:
    counts = Counter(labels)
    if len(counts) < 2:
        only = next(iter(counts), "none")
        raise InvalidInput(f"training data needs at least 2 labels; it has only {only!r}")
    rare = sorted(label for label, n in counts.items() if n < 2)
    if rare:
        raise InvalidInput(f"each label needs at least 2 examples; too few for: {', '.join(rare)}")
    return counts


def embed_texts(embedder: Embedder, texts: Sequence[str], *, progress: bool = True,
                desc: str = "embedding", max_chars: int = MAX_CLASSIFY_CHARS,
                cache_dir: Path | None = None) -> np.ndarray:
    """Embed ``texts`` (cut to ``max_chars``) with a progress bar; with ``cache_dir``, reuse
    and extend the on-disk embedding cache (saved every few batches, so a stopped run resumes)."""
    cut = [t[:max_chars] for t in texts]
    cached = cached_embedder(embedder, cache_dir, max_chars, batch=BATCH)
    return cached.embed(cut, progress=progress, desc=desc)


def fit_linear(vectors: np.ndarray, labels: Sequence[str], *, seed: int = SEED,
               folds: int = 5) -> tuple[LogisticRegression, dict[str, Any]]:
    """Cross-validated metrics, then the model fitted on everything."""
    counts = check_classes(labels)
    y = np.asarray(labels)
    k = max(2, min(folds, min(counts.values())))
    model = LogisticRegression(C=C, max_iter=3000)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, vectors, y, cv=cv)
    metrics = {"cv_folds": k,
               "cv_accuracy": round(float(accuracy_score(y, predicted)), 4),
               "cv_macro_f1": round(float(f1_score(y, predicted, average="macro")), 4),
               "n_examples": len(y),
               "class_counts": dict(sorted(counts.items()))}
    model.fit(vectors, y)
    return model, metrics


def train_classifier(settings: Any, embedder: Embedder, name: str, texts: Sequence[str],
                     labels: Sequence[str], *, progress: bool = True,
                     extra_meta: dict[str, Any] | None = None, seed: int = SEED,
                     cache_dir: Path | None = None,
                     extras: Callable[[list[str]], dict[str, np.ndarray]] | None = None,
                     tenant: str | None = None) -> LinearTextModel:
    """Embed, cross-validate, fit and save as ``tenant``'s model (no tenant: a shared preset);
    ``cache_dir`` defaults to the settings' cache."""
    check_classes(labels)
    if cache_dir is None and getattr(settings, "cache_dir", None) is not None:
        cache_dir = Path(settings.cache_dir) / "text-embeddings"
    vectors = embed_texts(embedder, texts, progress=progress, desc=f"embedding {name}",
                          cache_dir=cache_dir)
    model, metrics = fit_linear(vectors, labels, seed=seed)
    classes = [str(c) for c in model.classes_]
    meta = {"kind": "logistic-regression", "embedder": embedder.name, "C": C, "seed": seed,
            "embed_chars": MAX_CLASSIFY_CHARS, "metrics": metrics, **(extra_meta or {})}
    arrays = extras(classes) if extras is not None else None
    return save_model(settings, name, classes, model.coef_, model.intercept_, meta, arrays,
                      tenant=tenant)
