"""Collaborative-filtering models on an implicit user × item matrix (scipy CSR, float32).

Every model exposes ``fit(X)`` and ``score(H)``, where ``H`` holds users' history rows (the
same columns as ``X``). Scores come from the history given at query time, never from a stored
user factor, so an event recorded after training changes the next recommendation at once.

- ``EASE`` (Steck 2019): a closed-form item-item model, ``B = I - P / diag(P)`` with
  ``P = (XᵀX + Λ)⁻¹``. With ``dropout = 0`` Λ = λI (plain EASE); with ``dropout = p > 0`` it
  is the emphasized-denoising variant (EDLAE, Steck 2020), Λ = λI + p/(1-p)·diag(XᵀX), which
  regularises popular items more, as if each history entry were dropped with probability p.
  Best of the models measured on MovieLens-100k (benchmarks/recommend.py); O(items³) to fit,
  so catalogs above ``EASE_MAX_ITEMS`` fall back to item-kNN.
- ``ItemKNN``: cosine item-item similarity, top-``k`` neighbours per item (sparse).
- ``Popularity``: how many users interacted with each item.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp

EASE_MAX_ITEMS = 20_000


class CFModel(Protocol):
    name: str

    def fit(self, X: sp.csr_matrix) -> CFModel: ...

    def score(self, H: sp.csr_matrix) -> np.ndarray: ...


def as_csr(X: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(X, dtype=np.float32)


class EASE:
    name = "ease"

    def __init__(self, l2: float = 300.0, dropout: float = 0.0) -> None:
        if l2 <= 0:
            raise ValueError("EASE needs l2 > 0")
        if not 0.0 <= dropout < 1.0:
            raise ValueError("EASE dropout must be in [0, 1)")
        self.l2 = float(l2)
        self.dropout = float(dropout)
        self.B: np.ndarray = np.zeros((0, 0), dtype=np.float32)

    def fit(self, X: sp.csr_matrix) -> EASE:
        X = as_csr(X)
        n = X.shape[1]
        if n > EASE_MAX_ITEMS:
            raise ValueError(f"EASE is limited to {EASE_MAX_ITEMS} items (got {n}); use ItemKNN")
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices(n)] += self.l2 + self.dropout / (1.0 - self.dropout) * np.diag(G)
        P = _spd_inverse(G)
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices(n)] = 0.0
        self.B = B.astype(np.float32)
        return self

    def score(self, H: sp.csr_matrix) -> np.ndarray:
        return np.asarray(as_csr(H) @ self.B)


def _spd_inverse(G: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix by Cholesky (about half the work of
    ``np.linalg.inv``); falls back to ``inv`` if the factorisation fails."""
    from scipy.linalg import lapack

    c, info = lapack.dpotrf(G, lower=False)
    if info == 0:
        inv, info = lapack.dpotri(c, lower=False)
        if info == 0:
            upper = np.triu(inv)
            return upper + np.triu(inv, 1).T
    return np.linalg.inv(G)


class ItemKNN:
    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 10.0) -> None:
        self.k = int(k)
        self.shrink = float(shrink)
        self.S: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, X: sp.csr_matrix) -> ItemKNN:
        X = as_csr(X)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
        co = (X.T @ X).tocsr().astype(np.float32)
        co = (co - sp.diags(co.diagonal())).tocsr()  # setdiag() would warn on missing entries
        co.eliminate_zeros()
        co = co.tocoo()
        denom = norms[co.row] * norms[co.col] + self.shrink + 1e-9
        sim = sp.csr_matrix((co.data / denom, (co.row, co.col)), shape=co.shape, dtype=np.float32)
        self.S = _top_k_rows(sim, self.k)
        return self

    def score(self, H: sp.csr_matrix) -> np.ndarray:
        return np.asarray((as_csr(H) @ self.S).todense())


class Popularity:
    name = "popularity"

    def __init__(self) -> None:
        self.counts: np.ndarray = np.zeros(0, dtype=np.float32)

    def fit(self, X: sp.csr_matrix) -> Popularity:
        X = as_csr(X)
        self.counts = np.asarray((X > 0).sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, H: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.counts, (H.shape[0], 1))


def _top_k_rows(S: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row."""
    rows, cols, vals = [], [], []
    for i in range(S.shape[0]):
        start, end = S.indptr[i], S.indptr[i + 1]
        if end == start:
            continue
        data, idx = S.data[start:end], S.indices[start:end]
        if data.size > k:
            keep = np.argpartition(-data, k)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(idx.size, i))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(S.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=S.shape, dtype=np.float32)


def make_cf(n_items: int, l2: float = 300.0) -> EASE | ItemKNN:
    """EASE when the catalog allows it, item-kNN above ``EASE_MAX_ITEMS``."""
    return EASE(l2=l2) if n_items <= EASE_MAX_ITEMS else ItemKNN()
