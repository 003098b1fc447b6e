"""Search collections: dense rankings of the primary (and, when it applies, the secondary)
embedder and BM25, fused (``knowledge.fusion``), then filtered by relevance, which is always
judged with the primary embedder's cosine (``knowledge.relevance``).

Index files and BM25 indexes are kept in memory per collection: an index is reloaded when
another process replaced its file, the BM25 index rebuilt when the collection's generation
moves.

Concurrency: searches take no lock. What is kept for a collection (``_Cached``) is a snapshot
that is never changed once published: a reload or a BM25 rebuild builds a new one and swaps it
in (copy-on-write), so a search reads one consistent set of indexes. FAISS searches of an index
nobody adds to are thread-safe, and nobody adds to these: ingest, rebuild and delete write
their own copy of the index and replace its file (``knowledge.recovery``), which the next
search here picks up. Only loading a collection's snapshot is serialised, per collection, so
that concurrent searches load it once; searches of other collections, and of collections
already loaded, do not wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import select

from knowledge.catalog import Catalog
from knowledge.errors import KnowledgeError
from knowledge.fusion import fuse_scores, fusion_weights, secondary_applies
from knowledge.lexical import BM25Index
from knowledge.relevance import CROSS_LINGUAL_REDUCTION, Baseline
from knowledge.splitting import Chunk
from knowledge.store import READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import VectorIndex, file_signature

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


@dataclass(frozen=True)
class _Lexical:
    """A collection's BM25 index at one generation."""

    generation: int
    index: BM25Index
    ids: np.ndarray  # BM25 row -> chunk id
    rows: dict[int, int]  # chunk id -> BM25 row


@dataclass(frozen=True)
class _Cached:
    """What a search of one collection reads; replaced, never changed (see the docstring)."""

    signature: tuple[object, ...]
    index: VectorIndex
    secondary: VectorIndex | None = None
    lexical: _Lexical | None = None


class Searcher:
    """Searches the collections of ``catalog``."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._cache: dict[int, _Cached] = {}
        self._loading: dict[int, threading.Lock] = {}  # per collection: one load at a time
        self._lock = threading.Lock()  # the two dictionaries only, never held across work

    def forget(self, collection_id: int) -> None:
        """Drop what is kept in memory for a collection (its files were replaced or removed)."""
        with self._lock:
            self._cache.pop(collection_id, None)

    def _load_lock(self, collection_id: int) -> threading.Lock:
        with self._lock:
            return self._loading.setdefault(collection_id, threading.Lock())

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
        for col in cols:
            cached = self._cached(col, lexical=hybrid)
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

    def _cached(self, col: CollectionRow, *, lexical: bool) -> _Cached:
        """The collection's index (reloaded when another process replaced the file) and its
        BM25 index (rebuilt when the collection's generation moves).

        The checks (file signatures, the generation's query) and a fresh snapshot's use take
        no lock; a stale or missing snapshot is rebuilt under the collection's load lock."""
        catalog = self.catalog
        sig = (file_signature(catalog.index_path(col)), file_signature(catalog.secondary_path(col)),
               col.secondary)
        generation = self._generation(col) if lexical else None
        cached = self._cache.get(col.id)
        if cached is not None and self._fresh(cached, sig, generation):
            return cached
        with self._load_lock(col.id):
            cached = self._cache.get(col.id)  # another search may have loaded it meanwhile
            if cached is not None and self._fresh(cached, sig, generation):
                return cached
            if cached is None or cached.signature != sig:
                index = catalog.open_indexes(col)
                cached = _Cached(sig, index.primary, index.secondary)
            if generation is not None and (cached.lexical is None
                                           or cached.lexical.generation != generation):
                cached = replace(cached, lexical=self._lexical(col, generation))
            with self._lock:
                self._cache[col.id] = cached
            return cached

    @staticmethod
    def _fresh(cached: _Cached, sig: tuple[object, ...], generation: int | None) -> bool:
        return cached.signature == sig and (generation is None or (
            cached.lexical is not None and cached.lexical.generation == generation))

    def _generation(self, col: CollectionRow) -> int:
        with self.catalog.sessions() as s:
            generation = s.scalar(select(CollectionRow.generation)
                                  .where(CollectionRow.id == col.id))
        return int(generation or 0)

    def _lexical(self, col: CollectionRow, generation: int) -> _Lexical:
        with self.catalog.sessions() as s:
            rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta)
                             .join(DocumentRow)
                             .where(ChunkRow.collection_id == col.id,
                                    DocumentRow.status == READY)).all()
        index = BM25Index([Chunk(r.text, heading=(r.meta or {}).get("heading")).embedding_text()
                           for r in rows])
        return _Lexical(generation, index, np.array([r.id for r in rows], dtype=np.int64),
                        {r.id: n for n, r in enumerate(rows)})


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
