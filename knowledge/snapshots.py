"""The per-collection snapshots a search reads, kept up to date with the database.

Each collection's dense indexes and BM25 index are kept in memory at one generation of the
collection. The database is the source of truth (other replicas write to it), so before a
search uses a collection, ``Snapshots.get`` asks the database for its generation, at most once
per ``sync_interval_s`` per collection and in one query for all the collections a search asks
for. When the generation moved, the indexes are brought up to date from the database
(``knowledge.cache.sync``: the chunks that became ready are added with their stored vectors,
those no longer ready removed) and written to this replica's cache files; the BM25 index is
rebuilt. The same query says whether the collection has unsettled rows: when nobody holds its
lease they were left by a dead writer, and are settled here (``knowledge.recovery``). Chunks
without stored vectors are filled in (``knowledge.backfill``). So an ingest on another replica
is searchable here within about ``sync_interval_s``.

Concurrency: a snapshot (``Snapshot``) is never changed once published: bringing it up to date
or building its BM25 index makes a new one (the indexes copied first) and swaps it in
(copy-on-write), so a search reads one consistent set of indexes. FAISS searches of an index
nobody adds to are thread-safe, and nobody adds to these. Only updating a collection's
snapshot is serialised, per collection: a search that has a usable snapshot never waits for an
update another search is making (it reads the snapshot it has); only a first load is waited
for. Searches of other collections do not wait either.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import select

from knowledge import cache
from knowledge.backfill import backfill_if_free
from knowledge.catalog import Catalog, Indexes
from knowledge.lexical import BM25Index
from knowledge.recovery import settle_abandoned
from knowledge.splitting import Chunk
from knowledge.store import READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lexical:
    """A collection's BM25 index at one generation."""

    generation: int
    index: BM25Index
    ids: np.ndarray  # BM25 row -> chunk id
    rows: dict[int, int]  # chunk id -> BM25 row


@dataclass(frozen=True)
class Snapshot:
    """What a search of one collection reads; replaced, never changed (module docstring)."""

    generation: int  # of the collection, as the indexes reflect it
    identity: tuple[object, ...]  # the embedders they were built with (``cache.identity``)
    index: VectorIndex
    secondary: VectorIndex | None = None
    lexical: Lexical | None = None


@dataclass(frozen=True)
class _State:
    """A collection as the database has it now."""

    row: CollectionRow
    unsettled: bool  # it has pending or deleting documents


class Snapshots:
    """The snapshots of the collections of ``catalog`` that this process searched."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._cache: dict[int, Snapshot] = {}
        self._checked: dict[int, float] = {}  # collection id -> when the database was asked
        self._loading: dict[int, threading.Lock] = {}  # per collection: one update at a time
        self._lock = threading.Lock()  # the dictionaries only, never held across work
        self._catching_up: threading.Thread | None = None

    def forget(self, collection_id: int) -> None:
        """Drop what is kept in memory for a collection (its cache was replaced or removed)."""
        with self._lock:
            self._cache.pop(collection_id, None)
            self._checked.pop(collection_id, None)

    def changed(self, collection_id: int) -> None:
        """This process changed the collection: ask the database at the next search."""
        self._checked.pop(collection_id, None)

    def _load_lock(self, collection_id: int) -> threading.Lock:
        with self._lock:
            return self._loading.setdefault(collection_id, threading.Lock())

    def get(self, cols: Sequence[CollectionRow], *, lexical: bool) -> dict[int, Snapshot]:
        """A current snapshot per collection (absent: the collection was deleted meanwhile).
        The database is asked, in one query, only about the collections not asked about in
        the last ``sync_interval_s`` (module docstring)."""
        now = time.monotonic()
        interval = self.catalog.config.sync_interval_s
        due = [c.id for c in cols
               if c.id not in self._cache or now - self._checked.get(c.id, -math.inf) >= interval]
        states = self._states(due) if due else {}
        out: dict[int, Snapshot] = {}
        for col in cols:
            if col.id in due and col.id not in states:  # deleted (by another replica)
                self.forget(col.id)
                self.catalog.remove_files(col)
                continue
            out[col.id] = self._snapshot(col, states.get(col.id), lexical=lexical, now=now)
        return out

    def _states(self, ids: Sequence[int]) -> dict[int, _State]:
        unsettled = (select(DocumentRow.id)
                     .where(DocumentRow.collection_id == CollectionRow.id,
                            DocumentRow.status != READY)
                     .exists())
        with self.catalog.sessions() as s:
            rows = s.execute(select(CollectionRow, unsettled)
                             .where(CollectionRow.id.in_(list(ids)))).all()
        return {row.id: _State(row, bool(flag)) for row, flag in rows}

    def _snapshot(self, col: CollectionRow, state: _State | None, *, lexical: bool,
                  now: float) -> Snapshot:
        """The collection's snapshot, updated first when ``state`` (None: not asked this time)
        says it is behind, or built when missing. Only the update takes the collection's lock,
        and only a search without a usable snapshot waits for it."""
        cached = self._cache.get(col.id)
        if cached is not None and not self._stale(cached, state, lexical):
            if state is not None:
                self._checked[col.id] = now
            return cached
        lock = self._load_lock(col.id)
        usable = cached is not None and not (lexical and cached.lexical is None)
        if not lock.acquire(blocking=not usable):
            assert cached is not None
            return cached  # another search is updating it
        try:
            cached = self._cache.get(col.id)  # another search may have updated it meanwhile
            if cached is not None and not self._stale(cached, state, lexical):
                return cached
            if state is not None and state.unsettled and settle_abandoned(self.catalog, state.row):
                state = self._states([col.id]).get(col.id, state)
            if state is None and cached is None:
                state = self._states([col.id]).get(col.id) or _State(col, False)
            if state is not None and (cached is None or cached.generation != state.row.generation
                                      or cached.identity != tuple(cache.identity(state.row))):
                cached = self._updated(state.row, cached)
            assert cached is not None
            if lexical and (cached.lexical is None
                            or cached.lexical.generation != cached.generation):
                cached = replace(cached, lexical=self._lexical(col, cached.generation))
            with self._lock:
                self._cache[col.id] = cached
            if state is not None:
                self._checked[col.id] = now
            return cached
        finally:
            lock.release()

    @staticmethod
    def _stale(cached: Snapshot, state: _State | None, lexical: bool) -> bool:
        if lexical and cached.lexical is None:
            return True
        return state is not None and (state.unsettled or cached.generation != state.row.generation
                                      or cached.identity != tuple(cache.identity(state.row)))

    def _updated(self, row: CollectionRow, cached: Snapshot | None) -> Snapshot:
        """A snapshot of ``row``'s generation: a copy of ``cached`` (or else the cache files)
        brought up to date from the database, with missing vectors filled in if possible."""
        catalog = self.catalog
        if cached is not None and cached.identity == tuple(cache.identity(row)):
            indexes = Indexes(cached.index.copy(),
                              cached.secondary.copy() if cached.secondary is not None else None)
            generation: int | None = cached.generation
        else:
            indexes, generation = cache.load(catalog, row)
        if generation != row.generation:
            report = cache.sync(catalog, row, indexes)
            if (report.no_vector or (report.no_vector2 and catalog.uses_secondary(row))) \
                    and backfill_if_free(catalog, row):
                row = catalog.fresh(row.id)
                cache.sync(catalog, row, indexes)
            if cache.read_generation(catalog, row) != row.generation:
                cache.save(catalog, row, indexes, row.generation)
        return Snapshot(row.generation, tuple(cache.identity(row)), indexes.primary,
                       indexes.secondary)

    # -- readiness ----------------------------------------------------------------------

    def status(self, *, catch_up: bool = True) -> dict[str, Any]:
        """Whether this replica's cache of every collection it can search (built with its
        embedder) is at the database's generation: the snapshot in memory when loaded, else
        the cache files. One query. With ``catch_up``, collections behind are brought up to
        date in a background thread (files, and the snapshots already loaded), so that a
        replica reports ready soon after it started or fell behind while idle."""
        embedder = self.catalog.embedder
        with self.catalog.sessions() as s:
            rows = [c for c in s.scalars(select(CollectionRow).order_by(CollectionRow.tenant,
                                                                        CollectionRow.name))
                    if c.embedder == embedder.name and c.dim == embedder.dim]
        behind = []
        for row in rows:
            cached = self._cache.get(row.id)
            have = (cached.generation if cached is not None
                    and cached.identity == tuple(cache.identity(row))
                    else cache.read_generation(self.catalog, row))
            if have != row.generation:
                behind.append(row)
        if behind and catch_up:
            self._catch_up(behind)
        thread = self._catching_up
        return {"in_sync": not behind, "behind": [f"{r.tenant}/{r.name}" for r in behind],
                "collections": len(rows),
                "catching_up": thread is not None and thread.is_alive()}

    def _catch_up(self, rows: list[CollectionRow]) -> None:
        with self._lock:
            if self._catching_up is not None and self._catching_up.is_alive():
                return
            self._catching_up = threading.Thread(target=self._bring_up_to_date, args=(rows,),
                                                 name="kb-catch-up", daemon=True)
            self._catching_up.start()

    def _bring_up_to_date(self, rows: list[CollectionRow]) -> None:
        for row in rows:
            try:
                if row.id in self._cache:
                    self.changed(row.id)
                    self.get([row], lexical=self.catalog.config.hybrid)
                else:  # the files only: memory is spent when the collection is searched
                    with self._load_lock(row.id):
                        self._updated(row, None)
            except Exception:  # noqa: BLE001 - the next status call tries again
                log.warning("could not bring the cache of %s/%s up to date", row.tenant,
                            row.name, exc_info=True)

    def _lexical(self, col: CollectionRow, generation: int) -> Lexical:
        with self.catalog.sessions() as s:
            rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta)
                             .join(DocumentRow)
                             .where(ChunkRow.collection_id == col.id,
                                    DocumentRow.status == READY)).all()
        index = BM25Index([Chunk(r.text, heading=(r.meta or {}).get("heading")).embedding_text()
                           for r in rows])
        return Lexical(generation, index, np.array([r.id for r in rows], dtype=np.int64),
                        {r.id: n for n, r in enumerate(rows)})
