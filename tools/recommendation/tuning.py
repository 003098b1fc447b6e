"""Choosing the hybrid recommender's settings by measurement on a validation split.

One grid search, used both by training (``model.select_cf``) and by benchmarks/recommend.py, so
the settings the product runs are the ones measured: EASE's ``l2`` and ``dropout``
(cf.EASE) and the blend's content and popularity weights (hybrid.HybridScorer). Every
candidate is scored by nDCG@10 of the full hybrid ranking on the validation learners; ties go
to the earlier (simpler) candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from tools.recommendation.cf import EASE
from tools.recommendation.evaluation import Split, evaluate, top_k
from tools.recommendation.hybrid import HybridScorer

L2_GRID = (1.0, 5.0, 20.0, 50.0, 100.0, 150.0, 200.0, 300.0, 500.0)
DROPOUT_GRID = (0.0, 0.25, 0.5)
BLEND_GRID = ((0.3, 0.1), (0.1, 0.05), (0.2, 0.0), (0.1, 0.0), (0.0, 0.0))
"""(content_weight, popularity_weight); the first is the untuned default."""
DROPOUT_MAX_ITEMS = 3000
"""Above this many items only ``dropout = 0`` is tried (each EASE fit is O(items³))."""


@dataclass(frozen=True)
class HybridParams:
    l2: float = 300.0
    dropout: float = 0.0
    content_weight: float = 0.3
    popularity_weight: float = 0.1

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def label(self) -> str:
        return (f"ease(l2={self.l2:g},dropout={self.dropout:g})"
                f"+blend(content={self.content_weight:g},popularity={self.popularity_weight:g})")


def hybrid_ndcg(scorer: HybridScorer, history: sp.csr_matrix, seen: sp.csr_matrix, split: Split,
                k: int = 10, cf: np.ndarray | None = None) -> float:
    """nDCG@k of the hybrid ranking (no topic) over items outside ``seen``, for the learners of
    ``split.test`` (``cf``: their ``history @ B``, if already computed, in sorted-user order)."""
    k = min(k, history.shape[1] - 1)
    users = np.array(sorted(split.test), dtype=np.int64)
    ranked = top_k(scorer.scores(history[users].toarray(), cf), seen[users], k)
    row = {int(u): n for n, u in enumerate(users)}
    return evaluate(lambda us: ranked[[row[int(u)] for u in us]], split, k).ndcg


def tune_hybrid(history: sp.csr_matrix, seen: sp.csr_matrix, split: Split,
                popularity: np.ndarray, content: np.ndarray | None, *,
                l2_grid: tuple[float, ...] = L2_GRID,
                dropout_grid: tuple[float, ...] = DROPOUT_GRID,
                blend_grid: tuple[tuple[float, float], ...] = BLEND_GRID, progress: bool = False,
                ) -> tuple[HybridParams, float, dict[str, Any]]:
    """Best settings on ``split`` for EASE fitted on ``history`` (weights) and blended.

    Returns (params, validation nDCG@10, {label: nDCG@10 for every candidate})."""
    if history.shape[1] > DROPOUT_MAX_ITEMS:
        dropout_grid = tuple(p for p in dropout_grid if p == 0.0) or (0.0,)
    if content is None:  # without content vectors only the popularity weight matters
        blend_grid = tuple(dict.fromkeys((0.0, pw) for _, pw in blend_grid))
    tried: dict[str, float] = {}
    best: tuple[float, HybridParams] = (-1.0, HybridParams())
    fits = [(dropout, l2) for dropout in dropout_grid for l2 in l2_grid]
    for dropout, l2 in tqdm(fits, desc="tuning EASE + blend", unit="fit", disable=not progress):
        B = EASE(l2, dropout).fit(history).B
        cf = history[sorted(split.test)] @ B
        for cw, pw in blend_grid:
            params = HybridParams(l2, dropout, cw, pw)
            scorer = HybridScorer(B, popularity, content, content_weight=cw, popularity_weight=pw)
            got = hybrid_ndcg(scorer, history, seen, split, cf=cf)
            tried[params.label] = round(got, 4)
            if got > best[0]:
                best = (got, params)
    return best[1], best[0], tried
