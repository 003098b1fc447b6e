"""``KnowledgeBase``: ingest files into tenant collections, search them, check and repair.

A facade over the parts, each in its own module and sharing one ``Catalog``:

- ``knowledge.catalog``: configuration, sessions, index files, collection rows;
- ``knowledge.write_lease``: one writer per collection across replicas (a database lease);
- ``knowledge.ingest``: adding, replacing and skipping files;
- ``knowledge.recovery``: the commit point and crash recovery (how a write stays safe);
- ``knowledge.backfill``: vectors for chunks stored before the database held them;
- ``knowledge.cache``: this replica's index files, a cache of the vectors in the database;
- ``knowledge.maintenance``: check, rebuild, delete a document or a collection;
- ``knowledge.snapshots``: the in-memory indexes searches read, kept up to date with the
  database (and recovery and backfill, opportunistically);
- ``knowledge.search``: fused dense and BM25 search with the relevance threshold.

Replicas (``mentorly serve`` on several machines) share the database and nothing else: each
has its own ``data_dir``, and an ingest on one is searchable on the others within about
``KBConfig.sync_interval_s``.

The names callers use (``KBConfig``, ``FileOutcome``, ``IngestReport``, ``Hit``,
``CheckResult``) are importable from here and from ``knowledge``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from knowledge.catalog import Catalog, KBConfig
from knowledge.embedders import Embedder
from knowledge.ingest import FileOutcome, Ingester, IngestReport
from knowledge.maintenance import CheckResult, Maintenance
from knowledge.search import Hit, Searcher
from knowledge.store import CollectionRow

__all__ = ["CheckResult", "FileOutcome", "Hit", "IngestReport", "KBConfig", "KnowledgeBase"]


class KnowledgeBase:
    """Collections per tenant over one database and one folder of index files."""

    def __init__(self, db_url: str, data_dir: Path, embedder: Embedder,
                 config: KBConfig | None = None, secondary: Embedder | None = None) -> None:
        self.catalog = Catalog(db_url, data_dir, embedder, config, secondary)
        self._searcher = Searcher(self.catalog)
        snapshots = self._searcher.snapshots
        self._ingester = Ingester(self.catalog, changed=snapshots.changed)
        self._maintenance = Maintenance(self.catalog, forget=snapshots.forget,
                                        changed=snapshots.changed)

    # -- what the catalog holds -----------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        return self.catalog.embedder

    @property
    def secondary(self) -> Embedder | None:
        """The secondary embedder (None when not given or the same model as the primary)."""
        return self.catalog.secondary

    @property
    def config(self) -> KBConfig:
        return self.catalog.config

    @property
    def data_dir(self) -> Path:
        return self.catalog.data_dir

    @property
    def min_relevance(self) -> float:
        return self.catalog.min_relevance

    @property
    def _sessions(self) -> sessionmaker[Session]:  # the tests and benchmarks reach the rows
        return self.catalog.sessions

    def _index_path(self, col: CollectionRow) -> Path:
        return self.catalog.index_path(col)

    def _secondary_path(self, col: CollectionRow) -> Path:
        return self.catalog.secondary_path(col)

    def _ensure_collection(self, tenant: str, name: str) -> CollectionRow:
        return self.catalog.ensure_collection(tenant, name)

    # -- listings -------------------------------------------------------------------------

    def collections(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self.catalog.collections(tenant)

    def documents(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        return self.catalog.documents(tenant, collection)

    def collection_rows(self, tenant: str, names: Sequence[str] | None = None) -> list[CollectionRow]:
        return self._searcher.collection_rows(tenant, names)

    # -- writing and maintenance ------------------------------------------------------------

    def ingest(self, paths: Iterable[Path], tenant: str, collection: str, *,
               progress: bool = False,
               on_file: Callable[[FileOutcome], None] | None = None) -> IngestReport:
        """Add new files, replace changed ones, skip unchanged ones (by content hash)."""
        return self._ingester.ingest(paths, tenant, collection, progress=progress,
                                     on_file=on_file)

    def delete_document(self, tenant: str, collection: str, source: str) -> int:
        """Remove a document (by source name, or title when that is unique); returns its chunks."""
        return self._maintenance.delete_document(tenant, collection, source)

    def delete_collection(self, tenant: str, name: str) -> None:
        self._maintenance.delete_collection(tenant, name)

    def check(self, tenant: str | None = None, collection: str | None = None) -> list[CheckResult]:
        """Compare this replica's cache of each collection with its database rows (and report
        chunks without stored vectors)."""
        return self._maintenance.check(tenant, collection)

    def rebuild(self, tenant: str, collection: str, *, progress: bool = False) -> CheckResult:
        """Re-embed every chunk of the collection into the database and this replica's cache
        (also switches it to the current primary and secondary embedders, adding or dropping
        the secondary vectors)."""
        return self._maintenance.rebuild(tenant, collection, progress=progress)

    def cache_status(self, *, catch_up: bool = True) -> dict[str, Any]:
        """For readiness: ``{"in_sync": bool, "behind": ["<tenant>/<name>", ...], ...}``,
        this replica's cache of each collection it can search against the database's
        generation (one query); with ``catch_up``, collections behind are brought up to date
        in the background (``knowledge.snapshots.Snapshots.status``)."""
        return self._searcher.snapshots.status(catch_up=catch_up)

    # -- searching ------------------------------------------------------------------------

    def search(self, tenant: str, query: str, collections: Sequence[str] | None = None, k: int = 5,
               *, hybrid: bool | None = None, min_relevance: float | None = None) -> list[Hit]:
        """The best ``k`` passages above the relevance threshold, best first (see
        ``knowledge.search.Searcher.search``)."""
        return self._searcher.search(tenant, query, collections, k, hybrid=hybrid,
                                     min_relevance=min_relevance)

    def secondary_query_vector(self, cols: Sequence[CollectionRow], query: str) -> np.ndarray | None:
        return self._searcher.secondary_query_vector(cols, query)

    def search_vector(self, cols: list[CollectionRow], query: str, qv: np.ndarray, k: int, *,
                      hybrid: bool, min_relevance: float,
                      qv2: np.ndarray | None = None) -> list[Hit]:
        """Search with already computed query vectors (the benchmarks time the parts)."""
        return self._searcher.search_vector(cols, query, qv, k, hybrid=hybrid,
                                            min_relevance=min_relevance, qv2=qv2)
