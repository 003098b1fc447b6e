"""Zero-shot classification on the multilingual embedder.

A label becomes a prototype vector: a known label (a preset entry or one of its aliases) is the
mean of its English and Chinese descriptions; any other label is the mean of the bare label and
a template sentence in the label's own language. The text and the prototypes are embedded as e5
``passage:`` inputs (symmetric similarity). Cosine similarities become probabilities through a
softmax with a temperature fitted on the preset evaluation sets (see ``fit_temperature``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.errors import InvalidInput
from knowledge.embedders import Embedder

from .language import detect_language, has_visible, scrub, shown
from .presets import Language, known_label, normalise_label

MAX_LABELS = 200
MAX_LABEL_CHARS = 200
TEMPERATURE = 0.0055
"""Softmax temperature over cosine similarities, fitted (``fit_temperature``) on the 188 preset
evaluation items: expected calibration error 0.04 there. benchmarks/text.py refits it on one
preset and measures the calibration error on the other."""
UNCERTAIN_BELOW = 0.5
"""A single-label answer whose probability is below this is reported as ``uncertain``
(for two labels the bar is ``UNCERTAIN_BELOW_BINARY``: 0.5 would never trigger)."""
UNCERTAIN_BELOW_BINARY = 0.65
UNCERTAIN = "uncertain"

TEMPLATES: dict[Language, str] = {
    "en": "This text is about {label}.",
    "zh": "这段文字是关于{label}的。",
}


def dedupe_labels(labels: Sequence[str]) -> list[str]:
    """Drop blanks and duplicates (case- and space-insensitive), keeping the first spelling;
    raise ``InvalidInput`` unless 2..MAX_LABELS distinct labels remain."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise InvalidInput("labels must be a list of strings, not one string"
                           if isinstance(labels, str) else "labels must be a list of strings",
                           zh="标签必须是一个文字列表")
    seen: set[str] = set()
    out: list[str] = []
    for raw in labels:
        if not isinstance(raw, str):
            raise InvalidInput("each label must be a string", zh="每个标签都必须是文字")
        label = " ".join(scrub(raw).split())
        if not has_visible(label):
            continue
        if len(label) > MAX_LABEL_CHARS:
            raise InvalidInput(f"a label is longer than {MAX_LABEL_CHARS} characters: {label[:40]}…",
                               zh=f"有一个标签超过 {MAX_LABEL_CHARS} 个字符：{label[:40]}…")
        key = normalise_label(label)
        if key not in seen:
            seen.add(key)
            out.append(label)
    if len(out) < 2:
        got = f" ({shown(out[0], 40)})" if out else ""
        raise InvalidInput(
            f"zero-shot classification needs at least 2 distinct labels, got {len(out)}{got}; "
            "give more labels, or none for sentiment",
            zh=f"零样本分类至少需要 2 个不同的标签，现在只有 {len(out)} 个{got}；"
               "请多给几个标签，或者不给标签做情感分类")
    if len(out) > MAX_LABELS:
        raise InvalidInput(f"too many labels: {len(out)} (the limit is {MAX_LABELS})",
                           zh=f"标签太多：{len(out)} 个（上限是 {MAX_LABELS} 个）")
    return out


# "not X" and 不/不是/没有 X only: "non-fiction" or 非小说 are words of their own, which the
# embedder knows apart from "fiction".
_NEGATION_EN = re.compile(r"^not\s+(?P<rest>.+)$")
_NEGATION_ZH = re.compile(r"^(?:不是|没有|不)(?P<rest>.+)$")
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")


def negated_pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """(label, its negation) for every label that is another one with "not" (or 不/不是/没有)
    in front: "urgent" / "not urgent", "a question" / "not a question", "紧急" / "不紧急".

    Embeddings place a phrase and its negation almost on top of each other, so zero-shot cannot
    tell them apart: measured on 22 such texts it picked the right one 10 times."""
    keys = {_ARTICLE.sub("", normalise_label(label)): label for label in labels}
    pairs = []
    for label in labels:
        key = normalise_label(label)
        match = _NEGATION_EN.match(key) or _NEGATION_ZH.match(key)
        if match is None:
            continue
        base = keys.get(_ARTICLE.sub("", match.group("rest").strip()))
        if base is not None and base != label:
            pairs.append((base, label))
    return pairs


def softmax(sims: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    z = sims / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def one_vs_rest(sims: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """Multi-label scores: each label against the mean of the other candidates, through the
    same temperature, so each reads as "this label rather than a typical alternative"."""
    k = sims.shape[-1]
    rest = (sims.sum(axis=-1, keepdims=True) - sims) / max(k - 1, 1)
    return 1.0 / (1.0 + np.exp(-(sims - rest) / temperature))


@dataclass
class Prediction:
    label: str
    best_guess: str
    confidence: float
    scores: list[tuple[str, float]]
    multi_label: bool = False
    chosen: list[str] = field(default_factory=list)  # multi-label: every label with score ≥ 0.5

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        return {"label": self.label, "best_guess": self.best_guess,
                "confidence": round(self.confidence, 4),
                "scores": [{"label": name, "score": round(s, 4)} for name, s in self.scores[:top]],
                **({"labels": self.chosen} if self.multi_label else {})}


class ZeroShotClassifier:
    name = "zero-shot-embeddings"
    version = "1"

    def __init__(self, embedder: Embedder, temperature: float = TEMPERATURE) -> None:
        self.embedder = embedder
        self.temperature = temperature
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def label_vector(self, label: str) -> np.ndarray:
        key = normalise_label(label)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        info = known_label(label)
        if info is not None:
            phrases = [info.desc_en, info.desc_zh]
        else:
            phrases = [label, TEMPLATES[detect_language(label)].format(label=label)]
        vector = self.embedder.embed_documents(phrases).mean(axis=0)
        vector = (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)
        with self._lock:
            if len(self._cache) > 5000:
                self._cache.clear()
            self._cache[key] = vector
        return vector

    def label_matrix(self, labels: Sequence[str]) -> np.ndarray:
        return np.stack([self.label_vector(label) for label in labels])

    def similarities(self, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        return self.embedder.embed_documents(list(texts)) @ self.label_matrix(labels).T

    def predict(self, text: str, labels: Sequence[str], multi_label: bool = False) -> Prediction:
        labels = dedupe_labels(labels)
        sims = self.similarities([text], labels)[0]
        return self.decide(sims, labels, multi_label)

    def decide(self, sims: np.ndarray, labels: Sequence[str], multi_label: bool) -> Prediction:
        probs = (one_vs_rest if multi_label else softmax)(sims, self.temperature)
        order = np.argsort(-probs)
        scores = [(labels[i], float(probs[i])) for i in order]
        best, confidence = scores[0]
        if multi_label:
            chosen = [name for name, s in scores if s >= 0.5]
            return Prediction(label=", ".join(chosen) if chosen else UNCERTAIN, best_guess=best,
                              confidence=confidence, scores=scores, multi_label=True,
                              chosen=chosen)
        bar = UNCERTAIN_BELOW_BINARY if len(labels) == 2 else UNCERTAIN_BELOW
        return Prediction(label=best if confidence >= bar else UNCERTAIN, best_guess=best,
                          confidence=confidence, scores=scores)


def fit_temperature(sims: Sequence[np.ndarray], gold: Sequence[int]) -> float:
    """The softmax temperature minimising the negative log-likelihood of the gold labels
    (a 1-D grid search in log space: robust, deterministic, no optimiser dependency)."""
    grid = np.exp(np.linspace(np.log(0.002), np.log(0.5), 400))
    best_t, best_nll = float(grid[0]), float("inf")
    for t in grid:
        nll = -float(np.mean([np.log(softmax(s, t)[g] + 1e-12) for s, g in zip(sims, gold, strict=True)]))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (confidences > lo) & (confidences <= hi)
        if mask.any():
            total += mask.mean() * abs(float(correct[mask].mean()) - float(confidences[mask].mean()))
    return total
