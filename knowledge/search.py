"""Search collections: dense rankings of the primary (and, when it applies, the secondary)
embedder and BM25, fused (``knowledge.fusion``), then filtered by relevance, which is always
judged with the primary embedder's cosine (``knowledge.relevance``).

The indexes searched are per-collection snapshots kept up to date with the database
(``knowledge.snapshots``); searches take no lock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from knowledge.catalog import Catalog
from knowledge.errors import KnowledgeError
from knowledge.fusion import fuse_scores, fusion_weights, secondary_applies
from knowledge.relevance import CROSS_LINGUAL_REDUCTION, Baseline
from knowledge.snapshots import Snapshots
from knowledge.store import READY, ChunkRow, CollectionRow, DocumentRow

log = logging.getLogger(__name__)


@dataclass
class Hit:
    chunk_id: int
    text: str
    score: float  # cosine similarity with the query
    relevance: float  # the cosine minus the query's off-topic baseline (knowledge.relevance)
    fused: float  # the fusion score that ordered the hits
    collection: str
    source: str
    title: str
    heading: str | None = None
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Searcher:
    """Searches the collections of ``catalog``."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.snapshots = Snapshots(catalog)

    def search(self, tenant: str, query: str, collections: Sequence[str] | None = None, k: int = 5,
               *, hybrid: bool | None = None, min_relevance: float | None = None) -> list[Hit]:
        """The best ``k`` passages above the relevance threshold, best first.

        ``collections=None`` searches all the tenant's collections built with the current
        embedder (others are skipped with a warning: their vectors are not comparable).
        """
        query = (query or "").strip()
        if not query:
            raise KnowledgeError("the search query is empty")
        hybrid = self.catalog.config.hybrid if hybrid is None else hybrid
        min_relevance = self.catalog.min_relevance if min_relevance is None else min_relevance
        cols = self.collection_rows(tenant, collections)
        if not cols:
            return []
        qv = self.catalog.embedder.embed_queries([query])[0]
        qv2 = self.secondary_query_vector(cols, query)
        return self.search_vector(cols, query, qv, k, hybrid=hybrid, min_relevance=min_relevance,
                                  qv2=qv2)

    def secondary_query_vector(self, cols: Sequence[CollectionRow], query: str) -> np.ndarray | None:
        """The secondary embedder's query vector, when its ranking counts for this query and
        one of ``cols`` has a secondary index (otherwise it is not computed at all)."""
        secondary = self.catalog.secondary
        if (secondary is None or self.catalog.config.secondary_weight <= 0
                or not secondary_applies(query)
                or not any(self.catalog.uses_secondary(c) for c in cols)):
            return None
        return secondary.embed_queries([query])[0]

    def collection_rows(self, tenant: str, names: Sequence[str] | None = None) -> list[CollectionRow]:
        """The named collections (each must match the embedder), or all the tenant's usable ones."""
        catalog = self.catalog
        embedder = catalog.embedder
        with catalog.sessions() as s:
            if names is None:
                cols = list(s.scalars(select(CollectionRow).where(CollectionRow.tenant == tenant)))
                usable = [c for c in cols if c.embedder == embedder.name and c.dim == embedder.dim]
                for c in cols:
                    if c not in usable:
                        log.warning("collection %s/%s skipped: built with %s", tenant, c.name,
                                    c.embedder)
                return usable
            cols = [catalog.collection(s, tenant, n) for n in names]
        for c in cols:
            catalog.check_embedder(c)
        return cols

    def search_vector(self, cols: list[CollectionRow], query: str, qv: np.ndarray, k: int, *,
                      hybrid: bool, min_relevance: float,
                      qv2: np.ndarray | None = None) -> list[Hit]:
        """Search with already computed query vectors (the benchmarks time the parts).

        ``qv2`` is the secondary embedder's query vector (see ``secondary_query_vector``);
        without it only the primary dense ranking and BM25 are fused.
        """
        config = self.catalog.config
        n = max(config.candidates, k)
        weights = fusion_weights(query, lexical_weight=config.lexical_weight,
                                 secondary_weight=config.secondary_weight, hybrid=hybrid,
                                 secondary=qv2 is not None)
        keys: list[tuple[int, int]] = []  # (collection id, chunk id): the candidate pool
        primary: list[float] = []
        second: list[float] = []
        lexical: list[float] = []
        cosine: dict[tuple[int, int], float] = {}  # the primary embedder's, for relevance
        snapshots = self.snapshots.get(cols, lexical=hybrid)
        for col in cols:
            cached = snapshots.get(col.id)
            if cached is None:
                continue  # deleted meanwhile
            pool: dict[int, None] = {cid: None for cid, _ in cached.index.search(qv, n)}
            use2 = (weights[1] > 0 and qv2 is not None and cached.secondary is not None
                    and self.catalog.uses_secondary(col))
            if use2 and cached.secondary is not None and qv2 is not None:
                pool.update((cid, None) for cid, _ in cached.secondary.search(qv2, n))
            bm25 = None
            lex = cached.lexical
            if weights[2] > 0 and lex is not None:
                bm25 = lex.index.scores(query)
                pool.update((cid, None) for cid, _ in _top_ids(bm25, lex.ids, n))
            ids = sorted(pool)
            s1 = cached.index.scores_for(qv, ids)
            ids = [cid for cid in ids if cid in s1]  # not in the index: a write in progress
            s2 = (cached.secondary.scores_for(qv2, ids)
                  if use2 and cached.secondary is not None and qv2 is not None else {})
            for cid in ids:
                keys.append((col.id, cid))
                primary.append(s1[cid])
                cosine[(col.id, cid)] = s1[cid]
                second.append(s2.get(cid, 0.0))
                row = lex.rows.get(cid) if lex is not None else None
                lexical.append(float(bm25[row]) if bm25 is not None and row is not None else 0.0)
        fused = fuse_scores(keys, [np.array(primary), np.array(second), np.array(lexical)],
                            weights)
        chosen = fused[:k * 4]
        base = Baseline(self.catalog.embedder, query, qv)
        return self._hits(cols, chosen, cosine, base, min_relevance)[:k]

    def _hits(self, cols: list[CollectionRow], chosen: list[tuple[tuple[int, int], float]],
              cosine: dict[tuple[int, int], float], base: Baseline, min_relevance: float) -> list[Hit]:
        if not chosen:
            return []
        names = {c.id: c.name for c in cols}
        with self.catalog.sessions() as s:
            rows = s.execute(
                select(ChunkRow.id, ChunkRow.text, ChunkRow.meta, DocumentRow.source, DocumentRow.title)
                .join(DocumentRow).where(ChunkRow.id.in_([cid for (_, cid), _ in chosen]),
                                         DocumentRow.status == READY)).all()
        by_id = {r.id: r for r in rows}
        hits = []
        for (col_id, cid), fused in chosen:
            r = by_id.get(cid)
            if r is None:
                continue  # written by another process a moment ago and not settled yet
            score = cosine[(col_id, cid)]
            margin, crossed = base.margin(score, r.text)
            if margin < min_relevance - (CROSS_LINGUAL_REDUCTION if crossed else 0.0):
                continue
            meta = r.meta or {}
            hits.append(Hit(chunk_id=cid, text=r.text, score=round(score, 4),
                            relevance=round(margin, 4), fused=round(fused, 5),
                            collection=names[col_id], source=r.source, title=r.title,
                            heading=meta.get("heading"), page=meta.get("page")))
        return hits

def _top_ids(scores: np.ndarray, ids: np.ndarray | None, k: int) -> list[tuple[int, float]]:
    """The ``k`` best positive BM25 scores as (chunk id, score)."""
    if ids is None:
        return []
    nonzero = np.flatnonzero(scores > 0)
    if nonzero.size == 0:
        return []
    k = min(k, nonzero.size)
    best = nonzero[np.argpartition(-scores[nonzero], k - 1)[:k]]
    return [(int(ids[i]), float(scores[i])) for i in best]
