"""Offline evaluation: a per-user random split and top-k metrics over a full ranking.

The protocol (used by benchmarks/recommend.py and the tests):

- positives are ratings ≥ ``threshold`` (4 on MovieLens' 1–5 scale), read as implicit feedback;
- each user's positives are shuffled with a fixed seed and ``test_fraction`` of them (rounded,
  at least one) go to test; users with fewer than ``min_positives`` positives stay wholly in train;
- every model ranks all items the user has no training positive for (a full ranking);
- nDCG@k (binary gains), Recall@k = hits / |test items|, MAP@k = Σ precision@i at hits /
  min(k, |test items|), catalog coverage = distinct items recommended / all items.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Split:
    train: sp.csr_matrix  # users × items, binary float32
    test: dict[int, np.ndarray]  # user row → held-out item columns


def index_positives(users: np.ndarray, items: np.ndarray, values: np.ndarray, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Dense row/column indices of the positive (user, item) pairs and the matrix shape."""
    keep = values >= threshold
    _, u = np.unique(users, return_inverse=True)
    _, i = np.unique(items, return_inverse=True)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    return u[keep], i[keep], n_users, n_items


def random_split(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], *,
                 test_fraction: float = 0.2, seed: int = 0, min_positives: int = 5) -> Split:
    rng = np.random.default_rng(seed)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    bounds = np.flatnonzero(np.diff(rows)) + 1
    train_r, train_c, test = [], [], {}
    for r_block, c_block in zip(np.split(rows, bounds), np.split(cols, bounds), strict=True):
        if r_block.size == 0:
            continue
        c_block = rng.permutation(c_block)
        n_test = max(1, round(test_fraction * c_block.size)) if c_block.size >= min_positives else 0
        if n_test:
            test[int(r_block[0])] = c_block[:n_test]
        train_r.append(r_block[n_test:])
        train_c.append(c_block[n_test:])
    r, c = np.concatenate(train_r), np.concatenate(train_c)
    train = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=shape)
    return Split(train=train, test=test)


def top_k(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
    """Indices of the ``k`` best unseen items per row, best first."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    ordered = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, ordered, axis=1)


@dataclass(frozen=True)
class Metrics:
    ndcg: float
    recall: float
    map: float
    coverage: float
    users: int

    def as_dict(self) -> dict[str, float]:
        return {"ndcg@10": round(self.ndcg, 4), "recall@10": round(self.recall, 4),
                "map@10": round(self.map, 4), "coverage": round(self.coverage, 4),
                "users": self.users}


def evaluate(recommend: Callable[[np.ndarray], np.ndarray], split: Split, k: int = 10,
             batch: int = 256) -> Metrics:
    """``recommend(user_rows) -> (len(user_rows), k) item columns``; unseen items only."""
    users = np.array(sorted(split.test), dtype=np.int64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg = recall = ap = 0.0
    recommended: set[int] = set()
    for start in range(0, users.size, batch):
        chunk = users[start:start + batch]
        recs = recommend(chunk)
        for u, rec in zip(chunk, recs, strict=True):
            truth = split.test[int(u)]
            hits = np.isin(rec[:k], truth)
            recommended.update(int(x) for x in rec[:k])
            ideal = discounts[: min(k, truth.size)].sum()
            ndcg += float(discounts[hits].sum() / ideal)
            recall += float(hits.sum() / truth.size)
            precision_at = np.cumsum(hits) / np.arange(1, k + 1)
            ap += float((precision_at * hits).sum() / min(k, truth.size))
    n = max(1, users.size)
    return Metrics(ndcg=ndcg / n, recall=recall / n, map=ap / n,
                   coverage=len(recommended) / split.train.shape[1], users=int(users.size))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
