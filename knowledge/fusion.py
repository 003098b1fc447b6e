"""How the rankings of one search are fused: the primary embedder's dense ranking, an optional
secondary embedder's dense ranking, and BM25, by weighted reciprocal rank fusion.

The secondary embedder (the packaged all-MiniLM-L6-v2) was trained on English only, so its
ranking counts for queries that are not written in a CJK script and not at all for Chinese,
Japanese or Korean ones (its vectors for them are close to noise). That is a fixed rule from
what the model is, not a weight fitted on the benchmark questions.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from knowledge.lexical import rrf
from knowledge.relevance import is_cjk

K = TypeVar("K", bound=Hashable)


def secondary_applies(query: str) -> bool:
    """Whether the (English-only) secondary embedder's ranking counts for this query."""
    return not is_cjk(query)


def fusion_weights(query: str, *, lexical_weight: float, secondary_weight: float,
                   hybrid: bool, secondary: bool) -> tuple[float, float, float]:
    """(primary, secondary, lexical) weights for ``query``; 0 switches a ranking off."""
    return (1.0,
            secondary_weight if secondary and secondary_applies(query) else 0.0,
            lexical_weight if hybrid else 0.0)


def fuse(rankings: Sequence[Sequence[K]], weights: Sequence[float], k: int) -> list[tuple[K, float]]:
    """Weighted RRF over rankings of arbitrary keys, best first (rankings with weight 0 are
    left out, so they cannot even break ties)."""
    used = [(r, w) for r, w in zip(rankings, weights, strict=True) if w > 0 and r]
    keys: dict[K, int] = {}
    for ranking, _ in used:
        for key in ranking:
            keys.setdefault(key, len(keys))
    back = list(keys)
    fused = rrf([[keys[key] for key in r] for r, _ in used], k=k, weights=[w for _, w in used])
    return [(back[pos], score) for pos, score in fused]
