"""Ingest files into a collection: add new ones, replace changed ones, skip unchanged ones.

An ingest holds the collection's lease (``knowledge.write_lease``). It first settles what an
interrupted write left (``knowledge.recovery``) and fills in vectors missing from an older
database (``knowledge.backfill``), then writes documents ``pending`` with their chunks'
vectors and commits every ``flush_chunks`` chunks, so a crash at any point is undone by the
next holder of the lease, and a re-run skips what was committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from tqdm import tqdm

from knowledge import cache
from knowledge.backfill import backfill, needs_backfill
from knowledge.catalog import Catalog, Indexes
from knowledge.embedders import Embedder
from knowledge.errors import DocumentTooLarge, UnreadableDocument
from knowledge.leases import Lease
from knowledge.loaders import LoadedDocument, iter_files, load_file
from knowledge.recovery import Batch, flush, recover
from knowledge.splitting import Splitter
from knowledge.store import PENDING, READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import to_blob
from knowledge.write_lease import hold

log = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    source: str
    action: str  # added | replaced | skipped | failed
    reason: str = ""
    chunks: int = 0
    error: str = ""  # failed only: too_large | unreadable | internal (a bug: the log has it)


@dataclass
class IngestReport:
    tenant: str
    collection: str
    files: list[FileOutcome] = field(default_factory=list)
    recovered: int = 0
    seconds: float = 0.0

    def count(self, action: str) -> int:
        return sum(1 for f in self.files if f.action == action)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.action in ("added", "replaced"))

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "collection": self.collection, "recovered": self.recovered,
                "seconds": round(self.seconds, 3), "chunks": self.chunks,
                "counts": {a: self.count(a) for a in ("added", "replaced", "skipped", "failed")},
                "files": [asdict(f) for f in self.files]}


class Ingester:
    """Writes files into the collections of ``catalog``.

    ``changed(collection id)`` is called after an ingest, so that this process's searches ask
    the database for the collection's news at once rather than after ``sync_interval_s``.
    """

    def __init__(self, catalog: Catalog, changed: Callable[[int], None] | None = None) -> None:
        self.catalog = catalog
        self._changed = changed or (lambda _id: None)
        self._splitter = Splitter(catalog.config.chunk_units, catalog.config.overlap_units)
        # collections (with their embedders) known to have every vector: new rows always do,
        # so the backfill query runs once per collection and process
        self._complete: set[tuple[object, ...]] = set()

    def ingest(self, paths: Iterable[Path], tenant: str, collection: str, *,
               progress: bool = False,
               on_file: Callable[[FileOutcome], None] | None = None) -> IngestReport:
        """Add new files, replace changed ones, skip unchanged ones (by content hash)."""
        started = time.perf_counter()
        catalog = self.catalog
        col = catalog.ensure_collection(tenant, collection)
        catalog.check_embedder(col, write=True)
        report = IngestReport(tenant=tenant, collection=col.name)
        files = list(iter_files(paths))
        with hold(catalog, col) as lease:
            report.recovered = recover(catalog, col, lease)
            col = catalog.fresh(col.id)  # as the last writer left it
            catalog.check_embedder(col, write=True)
            key = tuple(cache.identity(col))
            if key not in self._complete:
                if needs_backfill(catalog, col):
                    backfill(catalog, col, lease)
                    col = catalog.fresh(col.id)
                self._complete.add(key)
            index = self._cache(col)
            with catalog.sessions() as s:
                current = {d.source: d for d in s.scalars(
                    select(DocumentRow).where(DocumentRow.collection_id == col.id,
                                              DocumentRow.status == READY))}
            seen: set[str] = set()
            batch = Batch()
            bar = tqdm(total=len(files), unit="file", disable=not progress, desc=f"ingest {col.name}")
            try:
                for path, source in files:
                    outcome = self._ingest_one(col, index, path, source, current, seen, batch,
                                               lease)
                    report.files.append(outcome)
                    if on_file is not None:
                        on_file(outcome)
                    bar.update(1)
                    bar.set_postfix_str(f"{outcome.action}: {source[-40:]}", refresh=False)
                    if batch.chunks >= catalog.config.flush_chunks:
                        flush(catalog, col, index, batch, lease)
                flush(catalog, col, index, batch, lease)
            finally:
                bar.close()
                self._changed(col.id)
        report.seconds = time.perf_counter() - started
        return report

    def _cache(self, col: CollectionRow) -> Indexes:
        """This replica's cache, brought up to date: the writer adds to it and writes it at
        each commit point (the lease holder is the only one changing the collection)."""
        index, generation = cache.load(self.catalog, col)
        if generation != col.generation:
            cache.sync(self.catalog, col, index)
        return index

    def _ingest_one(self, col: CollectionRow, index: Indexes, path: Path, source: str,
                    current: dict[str, DocumentRow], seen: set[str], batch: Batch,
                    lease: Lease) -> FileOutcome:
        if source in seen:
            return FileOutcome(source, "skipped", "another file with the same name in this ingest")
        seen.add(source)
        loaded = self._load(path, source)
        if isinstance(loaded, FileOutcome):
            return loaded
        old = current.get(source)
        if old is not None and old.content_hash == loaded.content_hash:
            return FileOutcome(source, "skipped", "unchanged", old.n_chunks)
        try:
            chunks = self._splitter.split(loaded.sections)
        except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the others
            log.exception("splitting %s failed", source)
            return FileOutcome(source, "failed", f"unexpected error while splitting it "
                               f"({type(exc).__name__}); the log has the details",
                               error="internal")
        if not chunks:
            return FileOutcome(source, "failed", "no text to index", error="unreadable")
        texts = [c.embedding_text() for c in chunks]
        secondary = self.catalog.secondary
        vectors = self._embed_documents(texts, self.catalog.embedder)
        vectors2 = (self._embed_documents(texts, secondary)
                    if index.secondary is not None and secondary is not None else None)
        lease.check()  # a writer that lost its lease stops writing
        with self.catalog.sessions() as s:
            # the old version stays ready (and searched) until the commit point deletes it
            doc = DocumentRow(collection_id=col.id, source=source, title=loaded.title,
                              content_hash=loaded.content_hash, status=PENDING, n_chunks=len(chunks))
            doc.chunks = [ChunkRow(collection_id=col.id, ordinal=n, text=c.text,
                                   meta={"heading": c.heading, "page": c.page},
                                   vector=to_blob(vectors[n]),
                                   vector2=to_blob(vectors2[n]) if vectors2 is not None else None)
                          for n, c in enumerate(chunks)]
            s.add(doc)
            s.commit()
            ids = np.array([c.id for c in doc.chunks], dtype=np.int64)
            old_ids = (list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id == old.id)))
                       if old is not None else [])
        index.primary.add(ids, vectors)
        if index.secondary is not None and vectors2 is not None:
            index.secondary.add(ids, vectors2)
        batch.pending.append(doc.id)
        batch.chunks += len(chunks)
        if old is not None:
            index.remove(old_ids)
            batch.deleting.append(old.id)
        current[source] = doc
        notes = "; ".join(loaded.notes)
        if old is not None:
            return FileOutcome(source, "replaced", "content changed" + (f"; {notes}" if notes else ""),
                               len(chunks))
        return FileOutcome(source, "added", notes, len(chunks))

    def _load(self, path: Path, source: str) -> LoadedDocument | FileOutcome:
        """The loaded file, or the outcome saying why it failed: whatever a loader raises fails
        this file only, and a folder's other files are still ingested."""
        config = self.catalog.config
        try:
            return load_file(path, source, config.max_file_bytes, config.limits)
        except DocumentTooLarge as exc:
            return FileOutcome(source, "failed", str(exc), error="too_large")
        except UnreadableDocument as exc:
            return FileOutcome(source, "failed", str(exc), error="unreadable")
        except Exception as exc:  # noqa: BLE001 - a loader bug or a parser's unforeseen error
            log.exception("reading %s failed", source)
            return FileOutcome(source, "failed", f"unexpected error while reading it "
                               f"({type(exc).__name__}); the log has the details",
                               error="internal")

    def _embed_documents(self, texts: Sequence[str], embedder: Embedder) -> np.ndarray:
        step = max(self.catalog.config.embed_batch, 1)
        parts = [embedder.embed_documents(list(texts[i:i + step]))
                 for i in range(0, len(texts), step)]
        return np.concatenate(parts).astype(np.float32) if parts else \
            np.zeros((0, embedder.dim), dtype=np.float32)
