"""The blend: collaborative filtering, content similarity and popularity, weighted by how much
history the learner has.

``w_cf = n / (n + shrink)`` grows with the number ``n`` of resources in the learner's history;
content similarity (to the history profile and to an asked-for topic) and popularity fill in
for new learners. Each component is scaled to [0, 1] over the catalog before blending, and
the per-item contributions are kept so every recommendation can say why it was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENT_WEIGHTS = {"view": 0.3, "like": 0.8, "complete": 1.0}


def interaction_weight(kind: str, value: float | None) -> float:
    """How strongly an event says "this learner engaged with this resource" (0–1)."""
    if kind == "rating":
        return float(value or 0.0) / 5.0
    if kind == "quiz":
        return 0.3 + 0.7 * float(value or 0.0) / 100.0
    return EVENT_WEIGHTS.get(kind, 0.0)


def _unit(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the maximum (negative values become 0)."""
    x = np.maximum(np.asarray(x, dtype=np.float32), 0.0)
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


@dataclass(frozen=True)
class Blend:
    score: np.ndarray  # (n_items,) in [0, 1]
    cf: np.ndarray  # weighted contributions, same shape
    content: np.ndarray
    popularity: np.ndarray
    weights: tuple[float, float, float]  # w_cf, w_content, w_popularity (sum to 1)


class HybridScorer:
    def __init__(self, B: np.ndarray | None, popularity: np.ndarray,
                 content: np.ndarray | None = None, *, shrink: float = 3.0,
                 content_weight: float = 0.3, topic_weight: float = 1.5,
                 popularity_weight: float = 0.1) -> None:
        self.B = B
        n = popularity.shape[0]
        if B is not None and B.shape != (n, n):
            raise ValueError("B and popularity disagree on the number of items")
        if content is not None and content.shape[0] != n:
            raise ValueError("content vectors and popularity disagree on the number of items")
        self.popularity = _unit(np.log1p(np.maximum(popularity, 0)))
        self.content = content
        self.shrink, self.content_weight = shrink, content_weight
        self.topic_weight, self.popularity_weight = topic_weight, popularity_weight

    @property
    def n_items(self) -> int:
        return int(self.popularity.shape[0])

    def weights(self, n_history: int, has_topic: bool) -> tuple[float, float, float]:
        w_cf = n_history / (n_history + self.shrink) if self.B is not None else 0.0
        w_content = 0.0
        if self.content is not None:
            w_content = (self.content_weight if n_history else 0.0) + \
                (self.topic_weight if has_topic else 0.0)
        w_pop = self.popularity_weight + (1.0 - w_cf)
        total = w_cf + w_content + w_pop
        return w_cf / total, w_content / total, w_pop / total

    def cf_scores(self, history: np.ndarray) -> np.ndarray:
        if self.B is None:
            return np.zeros(self.n_items, dtype=np.float32)
        idx = np.flatnonzero(history)
        return history[idx] @ self.B[idx] if idx.size else np.zeros(self.n_items, np.float32)

    def content_scores(self, history: np.ndarray, topic: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        zeros = np.zeros(self.n_items, dtype=np.float32)
        if self.content is None:
            return zeros, zeros
        by_history = zeros
        idx = np.flatnonzero(history)
        if idx.size:
            profile = history[idx] @ self.content[idx]
            norm = float(np.linalg.norm(profile))
            if norm > 0:
                by_history = _minmax(self.content @ (profile / norm))
        by_topic = _minmax(self.content @ topic) if topic is not None else zeros
        return by_history, by_topic

    def blend(self, history: np.ndarray, topic: np.ndarray | None = None) -> Blend:
        history = np.asarray(history, dtype=np.float32)
        n_history = int(np.count_nonzero(history))
        w_cf, w_content, w_pop = self.weights(n_history, topic is not None)
        cf = w_cf * _unit(self.cf_scores(history))
        by_history, by_topic = self.content_scores(history, topic)
        content = np.zeros(self.n_items, dtype=np.float32)
        if w_content:
            share_h = self.content_weight if n_history else 0.0
            share_t = self.topic_weight if topic is not None else 0.0
            content = w_content * (share_h * by_history + share_t * by_topic) / (share_h + share_t)
        pop = w_pop * self.popularity
        return Blend(score=cf + content + pop, cf=cf, content=content, popularity=pop,
                     weights=(w_cf, w_content, w_pop))

    def scores(self, H: np.ndarray, cf: np.ndarray | None = None) -> np.ndarray:
        """``blend(h).score`` for every row ``h`` of ``H`` at once (no topic): the same numbers,
        vectorised, so tuning the blend on thousands of validation learners stays cheap.
        ``cf`` may hold ``H @ B`` already computed (it does not depend on the blend weights)."""
        H = np.asarray(H, dtype=np.float32)
        n = np.count_nonzero(H, axis=1).astype(np.float32)[:, None]
        w_cf = n / (n + self.shrink) if self.B is not None else np.zeros_like(n)
        w_content = np.where(n > 0, self.content_weight, 0.0) if self.content is not None \
            else np.zeros_like(n)
        w_pop = self.popularity_weight + (1.0 - w_cf)
        total = w_cf + w_content + w_pop
        out = (w_pop / total) * self.popularity[None, :]
        if self.B is not None:
            cf = np.maximum(H @ self.B if cf is None else cf, 0.0)
            top = cf.max(axis=1, keepdims=True)
            out += (w_cf / total) * cf / np.where(top > 0, top, 1.0)
        if self.content is not None and self.content_weight:
            profile = H @ self.content
            norm = np.linalg.norm(profile, axis=1, keepdims=True)
            sims = (profile / np.where(norm > 0, norm, 1.0)) @ self.content.T
            lo, hi = sims.min(axis=1, keepdims=True), sims.max(axis=1, keepdims=True)
            spread = hi - lo
            scaled = (sims - lo) / np.where(spread > 0, spread, 1.0)
            by_history = np.where((norm > 0) & (spread > 0), scaled, 0.0)
            out += (w_content / total) * by_history
        return out.astype(np.float32)

