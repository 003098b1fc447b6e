"""The recommender on real interaction data: a subset of MovieLens-100k (recbole 1.2.1 wheel)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.movielens import DatasetMissing, load_ml100k
from tools.recommendation.cf import EASE, Popularity
from tools.recommendation.evaluation import Split, evaluate, index_positives, random_split, top_k
from tools.recommendation.hybrid import HybridScorer
from tools.recommendation.model import select_cf


@pytest.fixture(scope="module")
def subset() -> tuple[sp.csr_matrix, Split]:
    try:
        data = load_ml100k()
    except DatasetMissing as exc:
        pytest.skip(f"missing resource: {exc}")
    keep = data.users <= 400  # 400 users: fast, still real
    rows, cols, n_users, n_items = index_positives(data.users[keep], data.items[keep],
                                                   data.ratings[keep], threshold=4)
    split = random_split(rows, cols, (n_users, n_items), seed=3)
    return split.train, split


def test_metrics_on_a_hand_made_ranking() -> None:
    train = sp.csr_matrix((2, 4), dtype=np.float32)
    split = Split(train=train, test={0: np.array([1]), 1: np.array([2, 3])})
    perfect = evaluate(lambda us: np.array([[1, 0, 2, 3], [2, 3, 0, 1]])[us], split, k=4)
    assert perfect.ndcg == pytest.approx(1.0) and perfect.recall == 1.0 and perfect.map == 1.0
    worst = evaluate(lambda us: np.array([[0, 2, 3, 1], [0, 1, 2, 3]])[us], split, k=2)
    assert worst.ndcg == 0.0 and worst.recall == 0.0


def test_hybrid_beats_popularity_on_real_data(subset: tuple[sp.csr_matrix, Split]) -> None:
    X, split = subset
    popularity = Popularity().fit(X)
    pop = evaluate(lambda us: top_k(popularity.score(X[us]), X[us], 10), split)
    scorer = HybridScorer(EASE(l2=150).fit(X).B, popularity.counts)

    def ours(users: np.ndarray) -> np.ndarray:
        scores = np.stack([scorer.blend(X[int(u)].toarray().ravel()).score for u in users])
        return top_k(scores, X[users], 10)

    got = evaluate(ours, split)
    assert got.users > 300
    assert got.ndcg > 1.3 * pop.ndcg, (got, pop)
    assert got.coverage > pop.coverage


def test_model_selection_picks_cf_by_measurement(subset: tuple[sp.csr_matrix, Split]) -> None:
    X, _ = subset
    model, report = select_cf(X)
    assert model is not None and report["chosen"] != "popularity"
    assert report["candidates"][report["chosen"]] > report["candidates"]["popularity"]
    assert report["chosen"].startswith("ease(") and report["configs_tried"] >= 3
    assert model.l2 == report["blend"]["l2"] and model.dropout == report["blend"]["dropout"]
