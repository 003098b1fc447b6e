"""Choosing the hybrid recommender's settings by measurement on a validation split.

One search, used both by training (``model.select_cf``) and by benchmarks/recommend.py, so the
settings the product runs are the ones measured: EASE's ``l2`` and ``dropout`` (cf.EASE) and the
blend's content and popularity weights (hybrid.HybridScorer). Every candidate is scored by
nDCG@10 of the full hybrid ranking on the validation learners; ties go to the earlier one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from .cf import EASE
from .evaluation import Split, evaluate, top_k
from .hybrid import HybridScorer

L2_GRID = (1.0, 5.0, 20.0, 50.0, 100.0, 150.0, 200.0, 300.0, 500.0)
DROPOUT_GRID = (0.0, 0.5)
BLEND_GRID = ((0.3, 0.1), (0.1, 0.05), (0.2, 0.0), (0.1, 0.0), (0.0, 0.0))
"""(content_weight, popularity_weight); the first is the untuned default."""
L2_START = 150.0
"""Where the walk over ``L2_GRID`` begins (a common optimum on rating data)."""
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

    For each dropout the ``l2`` grid is walked from ``L2_START`` towards better validation
    scores until neither neighbour improves (nDCG is close to unimodal in l2), so a fit costs
    a handful of EASE solves instead of the whole grid; every blend is tried at every l2
    visited. Returns (params, validation nDCG@10, {label: nDCG@10 for every candidate})."""
    if history.shape[1] > DROPOUT_MAX_ITEMS:
        dropout_grid = tuple(p for p in dropout_grid if p == 0.0) or (0.0,)
    if content is None:  # without content vectors only the popularity weight matters
        blend_grid = tuple(dict.fromkeys((0.0, pw) for _, pw in blend_grid))
    l2_grid = tuple(sorted(l2_grid))
    users = sorted(split.test)
    tried: dict[str, float] = {}
    best: tuple[float, HybridParams] = (-1.0, HybridParams())
    bar = tqdm(desc="tuning EASE + blend", unit="fit", disable=not progress)

    def at(dropout: float, i: int) -> float:
        """Best blend's nDCG for ``l2_grid[i]`` (fits EASE once)."""
        nonlocal best
        B = EASE(l2_grid[i], dropout).fit(history).B
        cf = history[users] @ B
        top = -1.0
        for cw, pw in blend_grid:
            params = HybridParams(l2_grid[i], dropout, cw, pw)
            scorer = HybridScorer(B, popularity, content, content_weight=cw, popularity_weight=pw)
            got = hybrid_ndcg(scorer, history, seen, split, cf=cf)
            tried[params.label] = round(got, 4)
            top = max(top, got)
            if got > best[0]:
                best = (got, params)
        bar.update()
        return top

    start = int(np.argmin([abs(np.log(l2 / L2_START)) for l2 in l2_grid]))
    for dropout in dropout_grid:
        scores = {start: at(dropout, start)}
        i = start
        while True:
            for j in (i - 1, i + 1):
                if 0 <= j < len(l2_grid) and j not in scores:
                    scores[j] = at(dropout, j)
            j = max((j for j in (i - 1, i, i + 1) if j in scores), key=lambda j: scores[j])
            if j == i:
                break
            i = j
    bar.close()
    return best[1], best[0], tried
