"""EASE's denoising variant, the vectorised blend and the validation search that picks them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.movielens import DatasetMissing, load_ml100k
from tools.recommendation.cf import EASE
from tools.recommendation.evaluation import Split, index_positives, random_split
from tools.recommendation.hybrid import HybridScorer
from tools.recommendation.model import RecModel
from tools.recommendation.tuning import BLEND_GRID, L2_GRID, HybridParams, hybrid_ndcg, tune_hybrid


def _random_matrix(seed: int, shape: tuple[int, int] = (60, 25), density: float = 0.2) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(*shape, density=density, random_state=rng, dtype=np.float32).tocsr()
    X.data = np.ceil(X.data * 5) / 5  # ratings-like weights in (0, 1]
    return X


def test_ease_dropout_zero_is_plain_ease_and_dropout_changes_the_model() -> None:
    X = _random_matrix(0)
    G = (X.T @ X).toarray().astype(np.float64) + 30.0 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    plain = -P / np.diag(P)[None, :]
    np.fill_diagonal(plain, 0.0)
    assert np.allclose(EASE(30.0).fit(X).B, plain, atol=1e-5)
    denoised = EASE(30.0, dropout=0.5).fit(X).B
    assert np.allclose(np.diag(denoised), 0.0)
    # p = 0.5 adds p/(1-p) · diag(XᵀX) = diag(XᵀX) to the ridge: check against the formula.
    G2 = (X.T @ X).toarray().astype(np.float64)
    G2 += np.diag(30.0 + np.diag(G2))
    P2 = np.linalg.inv(G2)
    expected = -P2 / np.diag(P2)[None, :]
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(denoised, expected, atol=1e-5)
    assert not np.allclose(denoised, plain, atol=1e-3)
    with pytest.raises(ValueError):
        EASE(30.0, dropout=1.0)
    with pytest.raises(ValueError):
        EASE(30.0, dropout=-0.1)


@pytest.mark.parametrize("with_content", [True, False])
def test_vectorised_scores_equal_the_per_learner_blend(with_content: bool) -> None:
    X = _random_matrix(1)
    rng = np.random.default_rng(2)
    content = rng.normal(size=(X.shape[1], 8)).astype(np.float32) if with_content else None
    scorer = HybridScorer(EASE(20.0, 0.25).fit(X).B, np.asarray((X > 0).sum(axis=0)).ravel(),
                          content, content_weight=0.2, popularity_weight=0.05)
    H = X[:12].toarray()
    H[3] = 0.0  # a learner with no history: popularity only
    batch = scorer.scores(H)
    single = np.stack([scorer.blend(h).score for h in H])
    assert batch.shape == single.shape
    assert np.allclose(batch, single, atol=1e-5)
    assert np.allclose(scorer.scores(H, cf=H @ scorer.B), batch, atol=1e-6)
    assert np.argmax(batch[3]) == np.argmax(scorer.popularity)


def test_model_file_blend_weights_reach_the_scorer() -> None:
    n = 4
    model = RecModel(item_ids=[f"r{i}" for i in range(n)], popularity=np.ones(n, np.float32),
                     B=np.zeros((n, n), np.float32),
                     meta={"blend": {"content_weight": 0.2, "popularity_weight": 0.0}})
    scorer = model.scorer()
    assert (scorer.content_weight, scorer.popularity_weight) == (0.2, 0.0)
    old = RecModel(item_ids=model.item_ids, popularity=model.popularity, B=model.B, meta={})
    defaults = HybridParams()
    assert (old.scorer().content_weight, old.scorer().popularity_weight) == \
        (defaults.content_weight, defaults.popularity_weight)


@pytest.fixture(scope="module")
def ml_subset() -> tuple[sp.csr_matrix, Split]:
    try:
        data = load_ml100k()
    except DatasetMissing as exc:
        pytest.skip(f"missing resource: {exc}")
    keep = data.users <= 300
    rows, cols, n_users, n_items = index_positives(data.users[keep], data.items[keep],
                                                   data.ratings[keep], threshold=4)
    split = random_split(rows, cols, (n_users, n_items), seed=5)
    return split.train, split


def test_search_returns_its_best_candidate_and_beats_the_untuned_default(
        ml_subset: tuple[sp.csr_matrix, Split]) -> None:
    X, split = ml_subset
    popularity = np.asarray(X.sum(axis=0)).ravel()
    params, best, tried = tune_hybrid(X, X, split, popularity, None, l2_grid=(5.0, 200.0),
                                      dropout_grid=(0.0, 0.5), blend_grid=BLEND_GRID[:2])
    assert len(tried) == 2 * 2 * 2
    assert best == pytest.approx(max(tried.values()), abs=1e-4)
    assert tried[params.label] == pytest.approx(best, abs=1e-4)
    # The reported figure is what the chosen settings really score.
    scorer = HybridScorer(EASE(params.l2, params.dropout).fit(X).B, popularity, None,
                          content_weight=params.content_weight,
                          popularity_weight=params.popularity_weight)
    assert hybrid_ndcg(scorer, X, X, split) == pytest.approx(best, abs=1e-6)
    # l2 = 5 overfits on 300 users: the search must not pick it.
    assert params.l2 == 200.0
    # Without content vectors the content weight is dropped from the grid.
    assert all(p.startswith("ease(") and "content=0," in p for p in tried)
    assert best > tried[HybridParams(5.0, 0.0, 0.0, BLEND_GRID[0][1]).label]


def test_l2_walk_stops_early_at_a_local_best(ml_subset: tuple[sp.csr_matrix, Split]) -> None:
    X, split = ml_subset
    popularity = np.asarray(X.sum(axis=0)).ravel()
    params, best, tried = tune_hybrid(X, X, split, popularity, None, dropout_grid=(0.0,),
                                      blend_grid=BLEND_GRID[:1])
    visited = sorted(float(label.split("l2=")[1].split(",")[0]) for label in tried)
    assert 3 <= len(visited) < len(L2_GRID)  # a walk, not the whole grid
    i = L2_GRID.index(params.l2)
    # The chosen l2 beats both of its grid neighbours, which the walk must have measured.
    for j in (i - 1, i + 1):
        if 0 <= j < len(L2_GRID):
            assert L2_GRID[j] in visited
            label = HybridParams(L2_GRID[j], 0.0, 0.0, BLEND_GRID[0][1]).label
            assert tried[label] <= best
