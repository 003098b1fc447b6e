"""``KnowledgeBase``: ingest files into tenant collections, search them, check and repair.

Crash safety. Each ingested document version is written to the database as ``pending``
(with its chunks; a chunk's id is its FAISS id) and the version it replaces is marked
``deleting``. Every ``flush_chunks`` chunks, and at the end, the FAISS file is replaced
atomically and then one transaction deletes the ``deleting`` versions and marks the
``pending`` ones ``ready``. If the process dies in between, the next opening of the
collection looks at which ids the index file holds and finishes or undoes each document
(``recover``), so index and database agree again and re-running the ingest completes it.

A collection may also have a secondary embedder (recorded in its row like the primary one)
with a second FAISS file holding the same ids. Both files are written before the database is
settled, and ``recover`` counts a document as written only when both hold all its chunks, so
a crash between the two file replacements undoes that batch (re-running the ingest redoes it).
Searches fuse the scores of both embedders and BM25 (``knowledge.fusion``); relevance is always
judged with the primary embedder's cosine.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tqdm import tqdm

from knowledge.embedders import Embedder
from knowledge.errors import (
    CollectionNotFound,
    DocumentNotFound,
    DocumentTooLarge,
    EmbedderMismatch,
    KnowledgeError,
    UnreadableDocument,
)
from knowledge.fusion import fuse_scores, fusion_weights, secondary_applies
from knowledge.lexical import BM25Index
from knowledge.loaders import DEFAULT_MAX_BYTES, LoadedDocument, iter_files, load_file
from knowledge.relevance import CROSS_LINGUAL_REDUCTION, Baseline, default_min_margin
from knowledge.splitting import Chunk, Splitter
from knowledge.store import (
    DELETING,
    PENDING,
    READY,
    ChunkRow,
    CollectionRow,
    DocumentRow,
    make_sessionmaker,
)
from knowledge.unpacking import UnpackLimits
from knowledge.vectors import VectorIndex, file_signature

log = logging.getLogger(__name__)


@dataclass
class KBConfig:
    max_file_bytes: int = DEFAULT_MAX_BYTES
    limits: UnpackLimits = field(default_factory=UnpackLimits)  # what a file may unpack to
    chunk_units: int = 160
    overlap_units: int = 24
    min_relevance: float | None = None  # cosine minus the query's baseline; None: by embedder
    hybrid: bool = True
    lexical_weight: float = 0.1  # weight of the BM25 z-scores in the fusion (knowledge.fusion)
    secondary_weight: float = 3.0  # weight of the secondary embedder's (queries without CJK)
    candidates: int = 50  # per signal; their union is the pool that is fused
    flush_chunks: int = 512
    embed_batch: int = 32
    lock_timeout_s: float = 30.0


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


@dataclass
class CheckResult:
    tenant: str
    collection: str
    embedder: str
    index_vectors: int
    db_chunks: int
    documents: int
    missing_in_index: int = 0
    extra_in_index: int = 0
    recovered: int = 0
    secondary: str | None = None
    secondary_vectors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class _Indexes:
    """A collection's primary index and, when it has one, its secondary index."""

    primary: VectorIndex
    secondary: VectorIndex | None = None

    def all(self) -> list[VectorIndex]:
        return [self.primary] + ([self.secondary] if self.secondary is not None else [])

    def remove(self, ids: Sequence[int]) -> None:
        for index in self.all():
            index.remove(list(ids))

    def save(self) -> None:
        for index in reversed(self.all()):  # the secondary first, the primary last
            index.save()


@dataclass
class _Cached:
    signature: tuple[object, ...]
    index: VectorIndex
    secondary: VectorIndex | None = None
    generation: int = -1
    lexical: BM25Index | None = None
    lexical_ids: np.ndarray | None = None
    lexical_rows: dict[int, int] = field(default_factory=dict)  # chunk id -> BM25 row


class KnowledgeBase:
    """Collections per tenant over one database and one folder of index files."""

    def __init__(self, db_url: str, data_dir: Path, embedder: Embedder,
                 config: KBConfig | None = None, secondary: Embedder | None = None) -> None:
        self.embedder = embedder
        # a second embedder only helps when it is another model
        self.secondary = secondary if secondary is not None and secondary.name != embedder.name \
            else None
        self.config = config or KBConfig()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._sessions = make_sessionmaker(db_url)
        self._splitter = Splitter(self.config.chunk_units, self.config.overlap_units)
        self._cache: dict[int, _Cached] = {}
        self._lock = threading.RLock()

    @property
    def min_relevance(self) -> float:
        t = self.config.min_relevance
        return default_min_margin(self.embedder.name) if t is None else t

    # -- collections --------------------------------------------------------------------

    def _index_path(self, col: CollectionRow) -> Path:
        return self.data_dir / f"collection-{col.id}.faiss"

    def _secondary_path(self, col: CollectionRow) -> Path:
        return self.data_dir / f"collection-{col.id}.secondary.faiss"

    def _open_indexes(self, col: CollectionRow) -> _Indexes:
        secondary = (VectorIndex.open(self._secondary_path(col), int(col.secondary_dim or 0))
                     if col.secondary else None)
        return _Indexes(VectorIndex.open(self._index_path(col), col.dim), secondary)

    def _uses_secondary(self, col: CollectionRow) -> bool:
        """Whether searches of ``col`` can use its secondary index (same model as ours)."""
        return (self.secondary is not None and col.secondary == self.secondary.name
                and col.secondary_dim == self.secondary.dim)

    def collections(self, tenant: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as s:
            q = select(CollectionRow).order_by(CollectionRow.tenant, CollectionRow.name)
            if tenant is not None:
                q = q.where(CollectionRow.tenant == tenant)
            out = []
            for col in s.scalars(q):
                docs, chunks = s.execute(
                    select(func.count(DocumentRow.id), func.coalesce(func.sum(DocumentRow.n_chunks), 0))
                    .where(DocumentRow.collection_id == col.id, DocumentRow.status == READY)).one()
                out.append({"tenant": col.tenant, "name": col.name, "embedder": col.embedder,
                            "dim": col.dim, "secondary": col.secondary, "documents": int(docs),
                            "chunks": int(chunks)})
            return out

    def documents(self, tenant: str, collection: str) -> list[dict[str, Any]]:
        with self._sessions() as s:
            col = self._collection(s, tenant, collection)
            rows = s.scalars(select(DocumentRow).where(DocumentRow.collection_id == col.id,
                                                       DocumentRow.status == READY)
                             .order_by(DocumentRow.source))
            return [{"source": d.source, "title": d.title, "chunks": d.n_chunks,
                     "sha256": d.content_hash, "added": d.created_at.isoformat()} for d in rows]

    def _collection(self, s: Session, tenant: str, name: str) -> CollectionRow:
        col = s.scalar(select(CollectionRow).where(CollectionRow.tenant == tenant,
                                                   CollectionRow.name == name))
        if col is None:
            raise CollectionNotFound(f"no collection named {name!r} for tenant {tenant!r}")
        return col

    def _check_embedder(self, col: CollectionRow, *, write: bool = False) -> None:
        """The primary embedder must match; to write, so must the secondary one when the
        collection has a secondary index (a collection without one gets the primary only)."""
        if col.embedder != self.embedder.name or col.dim != self.embedder.dim:
            raise EmbedderMismatch(
                f"collection {col.name!r} was built with {col.embedder} ({col.dim}-d) but the "
                f"embedder now is {self.embedder.name} ({self.embedder.dim}-d); use the same "
                f"embedder or run `mentorly kb rebuild --collection {col.name}`")
        if write and col.secondary and not self._uses_secondary(col):
            now = self.secondary.name if self.secondary is not None else "none"
            raise EmbedderMismatch(
                f"collection {col.name!r} has a secondary index built with {col.secondary} "
                f"({col.secondary_dim}-d) but the secondary embedder now is {now}; configure the "
                f"same one or run `mentorly kb rebuild --collection {col.name}`")

    def _ensure_collection(self, tenant: str, name: str) -> CollectionRow:
        name = name.strip()
        if not name or len(name) > 200:
            raise KnowledgeError("a collection name must have 1 to 200 characters")
        with self._sessions() as s:
            col = s.scalar(select(CollectionRow).where(CollectionRow.tenant == tenant,
                                                       CollectionRow.name == name))
            if col is None:
                col = CollectionRow(tenant=tenant, name=name, embedder=self.embedder.name,
                                    dim=self.embedder.dim, generation=0,
                                    secondary=self.secondary.name if self.secondary else None,
                                    secondary_dim=self.secondary.dim if self.secondary else None)
                s.add(col)
                try:
                    s.commit()
                except IntegrityError:
                    # two first uploads to a new collection at once: the other one created it
                    s.rollback()
                    col = s.scalar(select(CollectionRow).where(CollectionRow.tenant == tenant,
                                                               CollectionRow.name == name))
                    if col is None:
                        raise
            return col

    def delete_collection(self, tenant: str, name: str) -> None:
        with self._sessions() as s:
            col = self._collection(s, tenant, name)
            with self._write_lock(col):
                s.delete(col)
                s.commit()
                self._index_path(col).unlink(missing_ok=True)
                self._secondary_path(col).unlink(missing_ok=True)
                with self._lock:
                    self._cache.pop(col.id, None)

    # -- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write_lock(self, col: CollectionRow) -> Iterator[None]:
        """One writer per collection across processes (the server and the CLI)."""
        path = self.data_dir / f"collection-{col.id}.lock"
        with open(path, "a+b") as fh:
            deadline = time.monotonic() + self.config.lock_timeout_s
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise KnowledgeError(f"collection {col.name!r} is being written by another "
                                             f"process; try again when it has finished") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def ingest(self, paths: Iterable[Path], tenant: str, collection: str, *,
               progress: bool = False,
               on_file: Callable[[FileOutcome], None] | None = None) -> IngestReport:
        """Add new files, replace changed ones, skip unchanged ones (by content hash)."""
        started = time.perf_counter()
        col = self._ensure_collection(tenant, collection)
        self._check_embedder(col, write=True)
        report = IngestReport(tenant=tenant, collection=col.name)
        files = list(iter_files(paths))
        with self._write_lock(col):
            report.recovered = self._recover(col)
            index = self._open_indexes(col)
            with self._sessions() as s:
                current = {d.source: d for d in s.scalars(
                    select(DocumentRow).where(DocumentRow.collection_id == col.id,
                                              DocumentRow.status == READY))}
            seen: set[str] = set()
            batch = _Batch()
            bar = tqdm(total=len(files), unit="file", disable=not progress, desc=f"ingest {col.name}")
            try:
                for path, source in files:
                    outcome = self._ingest_one(col, index, path, source, current, seen, batch)
                    report.files.append(outcome)
                    if on_file is not None:
                        on_file(outcome)
                    bar.update(1)
                    bar.set_postfix_str(f"{outcome.action}: {source[-40:]}", refresh=False)
                    if batch.chunks >= self.config.flush_chunks:
                        self._flush(col, index, batch)
                self._flush(col, index, batch)
            finally:
                bar.close()
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_one(self, col: CollectionRow, index: _Indexes, path: Path, source: str,
                    current: dict[str, DocumentRow], seen: set[str], batch: _Batch) -> FileOutcome:
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
        vectors = self._embed_documents(texts, self.embedder)
        vectors2 = (self._embed_documents(texts, self.secondary)
                    if index.secondary is not None and self.secondary is not None else None)
        with self._sessions() as s:
            if old is not None:
                s.execute(update(DocumentRow).where(DocumentRow.id == old.id).values(status=DELETING))
            doc = DocumentRow(collection_id=col.id, source=source, title=loaded.title,
                              content_hash=loaded.content_hash, status=PENDING, n_chunks=len(chunks))
            doc.chunks = [ChunkRow(collection_id=col.id, ordinal=n, text=c.text,
                                   meta={"heading": c.heading, "page": c.page})
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
        try:
            return load_file(path, source, self.config.max_file_bytes, self.config.limits)
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
        step = max(self.config.embed_batch, 1)
        parts = [embedder.embed_documents(list(texts[i:i + step]))
                 for i in range(0, len(texts), step)]
        return np.concatenate(parts).astype(np.float32) if parts else \
            np.zeros((0, embedder.dim), dtype=np.float32)

    def _flush(self, col: CollectionRow, index: _Indexes, batch: _Batch) -> None:
        """The commit point: replace the index file, then settle the documents."""
        if not batch.pending and not batch.deleting:
            return
        index.save()
        with self._sessions() as s:
            if batch.deleting:
                s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(batch.deleting)))
                s.execute(delete(DocumentRow).where(DocumentRow.id.in_(batch.deleting)))
            if batch.pending:
                s.execute(update(DocumentRow).where(DocumentRow.id.in_(batch.pending))
                          .values(status=READY))
            s.execute(update(CollectionRow).where(CollectionRow.id == col.id)
                      .values(generation=CollectionRow.generation + 1))
            s.commit()
        batch.clear()

    def delete_document(self, tenant: str, collection: str, source: str) -> int:
        """Remove a document (by source name, or title when that is unique); returns its chunks."""
        with self._sessions() as s:
            col = self._collection(s, tenant, collection)
        with self._write_lock(col):
            self._recover(col)
            with self._sessions() as s:
                docs = list(s.scalars(select(DocumentRow).where(
                    DocumentRow.collection_id == col.id, DocumentRow.status == READY,
                    (DocumentRow.source == source) | (DocumentRow.title == source))))
                exact = [d for d in docs if d.source == source]
                docs = exact or docs
                if not docs:
                    raise DocumentNotFound(f"no document {source!r} in collection {collection!r}")
                if len(docs) > 1:
                    raise DocumentNotFound(f"{source!r} matches several documents; use the source "
                                           f"name shown by `mentorly kb list`")
                doc = docs[0]
                ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id == doc.id)))
                doc.status = DELETING
                s.commit()
            index = self._open_indexes(col)
            index.remove(ids)
            batch = _Batch(deleting=[doc.id])
            self._flush(col, index, batch)
            return len(ids)

    # -- consistency ----------------------------------------------------------------------

    def _recover(self, col: CollectionRow) -> int:
        """Finish or undo documents left ``pending``/``deleting`` by an interrupted write.

        Call with the collection's write lock held. Returns how many documents it settled.
        """
        with self._sessions() as s:
            unsettled = list(s.scalars(select(DocumentRow).where(
                DocumentRow.collection_id == col.id, DocumentRow.status.in_((PENDING, DELETING)))))
            if not unsettled:
                return 0
            index = self._open_indexes(col)
            held = [set(ix.ids().tolist()) for ix in index.all()]
            present = set.union(*held)  # in at least one index
            changed = False
            for doc in unsettled:
                ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id == doc.id)))
                inside = [i for i in ids if i in present]
                # written only when every index holds every chunk
                complete = bool(ids) and all(i in h for h in held for i in ids)
                if doc.status == PENDING and complete:
                    doc.status = READY  # the index was written: roll forward
                elif doc.status == DELETING and inside:
                    if not complete:
                        index.remove(inside)
                        changed = True
                        s.delete(doc)
                    else:
                        doc.status = READY  # the index still has it: roll back the delete
                else:
                    if inside:
                        index.remove(inside)
                        changed = True
                    s.delete(doc)
            if changed:
                index.save()
            s.execute(update(CollectionRow).where(CollectionRow.id == col.id)
                      .values(generation=CollectionRow.generation + 1))
            s.commit()
            log.warning("collection %s/%s: settled %d documents left by an interrupted write",
                        col.tenant, col.name, len(unsettled))
            return len(unsettled)

    def check(self, tenant: str | None = None, collection: str | None = None) -> list[CheckResult]:
        """Compare each collection's index file with its database rows."""
        with self._sessions() as s:
            q = select(CollectionRow).order_by(CollectionRow.tenant, CollectionRow.name)
            if tenant is not None:
                q = q.where(CollectionRow.tenant == tenant)
            if collection is not None:
                q = q.where(CollectionRow.name == collection)
            cols = list(s.scalars(q))
        if collection is not None and not cols:
            raise CollectionNotFound(f"no collection named {collection!r}")
        return [self._check_one(col) for col in cols]

    def _check_one(self, col: CollectionRow) -> CheckResult:
        with self._write_lock(col):
            recovered = self._recover(col)
        with self._sessions() as s:
            db_ids = set(s.scalars(select(ChunkRow.id).join(DocumentRow).where(
                ChunkRow.collection_id == col.id, DocumentRow.status == READY)))
            docs = s.scalar(select(func.count(DocumentRow.id)).where(
                DocumentRow.collection_id == col.id, DocumentRow.status == READY)) or 0
        result = CheckResult(tenant=col.tenant, collection=col.name, embedder=col.embedder,
                             index_vectors=0, db_chunks=len(db_ids), documents=int(docs),
                             recovered=recovered, secondary=col.secondary)
        files = [("", self._index_path(col), col.dim)]
        if col.secondary:
            files.append(("secondary ", self._secondary_path(col), int(col.secondary_dim or 0)))
        for label, path, dim in files:
            if not path.exists() and db_ids:
                result.problems.append(f"the {label}index file is missing")
                result.missing_in_index = max(result.missing_in_index, len(db_ids))
                continue
            try:
                index = VectorIndex.open(path, dim)
            except KnowledgeError as exc:
                result.problems.append(f"{label}index: {exc}" if label else str(exc))
                continue
            index_ids = set(index.ids().tolist())
            if label:
                result.secondary_vectors = len(index_ids)
            else:
                result.index_vectors = len(index_ids)
            missing, extra = len(db_ids - index_ids), len(index_ids - db_ids)
            result.missing_in_index = max(result.missing_in_index, missing)
            result.extra_in_index = max(result.extra_in_index, extra)
            if missing:
                result.problems.append(f"{missing} chunks are in the database but not in the "
                                       f"{label}index")
            if extra:
                result.problems.append(f"{extra} vectors in the {label}index have no chunk in "
                                       f"the database")
        return result

    def rebuild(self, tenant: str, collection: str, *, progress: bool = False) -> CheckResult:
        """Re-embed every chunk of the collection into fresh index files (also switches it to
        the current primary and secondary embedders, adding or dropping the secondary index)."""
        with self._sessions() as s:
            col = self._collection(s, tenant, collection)
        with self._write_lock(col):
            self._recover(col)
            with self._sessions() as s:
                rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta).join(DocumentRow)
                                 .where(ChunkRow.collection_id == col.id, DocumentRow.status == READY)
                                 .order_by(ChunkRow.id)).all()
            index = VectorIndex.empty(self._index_path(col), self.embedder.dim)
            index2 = (VectorIndex.empty(self._secondary_path(col), self.secondary.dim)
                      if self.secondary is not None else None)
            step = max(self.config.embed_batch, 1)
            with tqdm(total=len(rows), unit="chunk", disable=not progress,
                      desc=f"rebuild {col.name}") as bar:
                for i in range(0, len(rows), step):
                    part = rows[i:i + step]
                    texts = [Chunk(r.text, heading=(r.meta or {}).get("heading")).embedding_text()
                             for r in part]
                    ids = np.array([r.id for r in part], dtype=np.int64)
                    index.add(ids, self.embedder.embed_documents(texts))
                    if index2 is not None and self.secondary is not None:
                        index2.add(ids, self.secondary.embed_documents(texts))
                    bar.update(len(part))
            if index2 is not None:
                index2.save()
            index.save()
            with self._sessions() as s:
                s.execute(update(CollectionRow).where(CollectionRow.id == col.id).values(
                    embedder=self.embedder.name, dim=self.embedder.dim,
                    secondary=self.secondary.name if self.secondary else None,
                    secondary_dim=self.secondary.dim if self.secondary else None,
                    generation=CollectionRow.generation + 1))
                s.commit()
            if index2 is None:
                self._secondary_path(col).unlink(missing_ok=True)
            with self._lock:
                self._cache.pop(col.id, None)
        return self.check(tenant, collection)[0]

    # -- searching ------------------------------------------------------------------------

    def search(self, tenant: str, query: str, collections: Sequence[str] | None = None, k: int = 5,
               *, hybrid: bool | None = None, min_relevance: float | None = None) -> list[Hit]:
        """The best ``k`` passages above the relevance threshold, best first.

        ``collections=None`` searches all the tenant's collections built with the current
        embedder (others are skipped with a warning: their vectors are not comparable).
        """
        query = (query or "").strip()
        if not query:
            raise KnowledgeError("the search query is empty")
        hybrid = self.config.hybrid if hybrid is None else hybrid
        min_relevance = self.min_relevance if min_relevance is None else min_relevance
        cols = self._search_collections(tenant, collections)
        if not cols:
            return []
        qv = self.embedder.embed_queries([query])[0]
        qv2 = self.secondary_query_vector(cols, query)
        return self.search_vector(cols, query, qv, k, hybrid=hybrid, min_relevance=min_relevance,
                                  qv2=qv2)

    def secondary_query_vector(self, cols: Sequence[CollectionRow], query: str) -> np.ndarray | None:
        """The secondary embedder's query vector, when its ranking counts for this query and
        one of ``cols`` has a secondary index (otherwise it is not computed at all)."""
        if (self.secondary is None or self.config.secondary_weight <= 0
                or not secondary_applies(query) or not any(self._uses_secondary(c) for c in cols)):
            return None
        return self.secondary.embed_queries([query])[0]

    def _search_collections(self, tenant: str, names: Sequence[str] | None) -> list[CollectionRow]:
        with self._sessions() as s:
            if names is None:
                cols = list(s.scalars(select(CollectionRow).where(CollectionRow.tenant == tenant)))
                usable = [c for c in cols if c.embedder == self.embedder.name
                          and c.dim == self.embedder.dim]
                for c in cols:
                    if c not in usable:
                        log.warning("collection %s/%s skipped: built with %s", tenant, c.name,
                                    c.embedder)
                return usable
            cols = [self._collection(s, tenant, n) for n in names]
        for c in cols:
            self._check_embedder(c)
        return cols

    def search_vector(self, cols: list[CollectionRow], query: str, qv: np.ndarray, k: int, *,
                      hybrid: bool, min_relevance: float,
                      qv2: np.ndarray | None = None) -> list[Hit]:
        """Search with already computed query vectors (the benchmarks time the parts).

        ``qv2`` is the secondary embedder's query vector (see ``secondary_query_vector``);
        without it only the primary dense ranking and BM25 are fused.
        """
        n = max(self.config.candidates, k)
        weights = fusion_weights(query, lexical_weight=self.config.lexical_weight,
                                 secondary_weight=self.config.secondary_weight, hybrid=hybrid,
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
                    and self._uses_secondary(col))
            if use2 and cached.secondary is not None and qv2 is not None:
                pool.update((cid, None) for cid, _ in cached.secondary.search(qv2, n))
            bm25 = None
            if weights[2] > 0 and cached.lexical is not None:
                bm25 = cached.lexical.scores(query)
                pool.update((cid, None) for cid, _ in _top_ids(bm25, cached.lexical_ids, n))
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
                row = cached.lexical_rows.get(cid)
                lexical.append(float(bm25[row]) if bm25 is not None and row is not None else 0.0)
        fused = fuse_scores(keys, [np.array(primary), np.array(second), np.array(lexical)],
                            weights)
        chosen = fused[:k * 4]
        return self._hits(cols, chosen, cosine, Baseline(self.embedder, query, qv), min_relevance)[:k]

    def _hits(self, cols: list[CollectionRow], chosen: list[tuple[tuple[int, int], float]],
              cosine: dict[tuple[int, int], float], base: Baseline, min_relevance: float) -> list[Hit]:
        if not chosen:
            return []
        names = {c.id: c.name for c in cols}
        with self._sessions() as s:
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
        BM25 index (rebuilt when the collection's generation moves)."""
        path, path2 = self._index_path(col), self._secondary_path(col)
        with self._lock:
            sig = (file_signature(path), file_signature(path2), col.secondary)
            cached = self._cache.get(col.id)
            if cached is None or cached.signature != sig:
                index = self._open_indexes(col)
                cached = _Cached(sig, index.primary, index.secondary)
                self._cache[col.id] = cached
            if lexical:
                with self._sessions() as s:
                    generation = s.scalar(select(CollectionRow.generation)
                                          .where(CollectionRow.id == col.id))
                if cached.lexical is None or cached.generation != generation:
                    with self._sessions() as s:
                        rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta)
                                         .join(DocumentRow)
                                         .where(ChunkRow.collection_id == col.id,
                                                DocumentRow.status == READY)).all()
                    cached.lexical = BM25Index([Chunk(r.text, heading=(r.meta or {}).get("heading"))
                                                .embedding_text() for r in rows])
                    cached.lexical_ids = np.array([r.id for r in rows], dtype=np.int64)
                    cached.lexical_rows = {r.id: n for n, r in enumerate(rows)}
                    cached.generation = int(generation or 0)
            return cached

    def collection_rows(self, tenant: str, names: Sequence[str] | None = None) -> list[CollectionRow]:
        return self._search_collections(tenant, names)


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


@dataclass
class _Batch:
    pending: list[int] = field(default_factory=list)
    deleting: list[int] = field(default_factory=list)
    chunks: int = 0

    def clear(self) -> None:
        self.pending.clear()
        self.deleting.clear()
        self.chunks = 0
