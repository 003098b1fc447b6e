"""The collections of one database and one folder of index files: what ingest, maintenance and
search share.

A ``Catalog`` holds the embedders and the configuration, opens database sessions and a
collection's FAISS files, finds or creates collection rows, and checks that a collection was
built with the embedders in use. It lists collections and documents; it never writes an index.

The database is the source of truth, vectors included; the files in ``data_dir`` are this
replica's cache of them (``knowledge.cache``): ``collection-<id>.faiss``,
``collection-<id>.secondary.faiss`` and their sidecar ``collection-<id>.cache.json``. Writers
take the collection's database lease (``knowledge.write_lease``), not a file lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import knowledge.leases  # noqa: F401 - registers the leases table before create_all
from knowledge.embedders import Embedder
from knowledge.errors import CollectionNotFound, EmbedderMismatch, KnowledgeError
from knowledge.loaders import DEFAULT_MAX_BYTES
from knowledge.relevance import default_min_margin
from knowledge.store import READY, CollectionRow, DocumentRow, make_sessionmaker
from knowledge.unpacking import UnpackLimits
from knowledge.vectors import VectorIndex


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
    lock_timeout_s: float = 30.0  # how long a writer waits for a collection's lease
    lease_ttl_s: float = 30.0  # a writer's lease lapses this long after its process died
    sync_interval_s: float = 1.0  # a search asks the database for news at most this often


@dataclass
class Indexes:
    """A collection's primary index and, when it has one, its secondary index."""

    primary: VectorIndex
    secondary: VectorIndex | None = None

    def all(self) -> list[VectorIndex]:
        return [self.primary] + ([self.secondary] if self.secondary is not None else [])

    def remove(self, ids: Sequence[int]) -> None:
        for index in self.all():
            index.remove(list(ids))

    def save(self, *, durable: bool = True) -> None:
        for index in reversed(self.all()):  # the secondary first, the primary last
            index.save(durable=durable)


class Catalog:
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
        self.sessions: sessionmaker[Session] = make_sessionmaker(db_url)

    @property
    def min_relevance(self) -> float:
        t = self.config.min_relevance
        return default_min_margin(self.embedder.name) if t is None else t

    # -- files --------------------------------------------------------------------------

    def index_path(self, col: CollectionRow) -> Path:
        return self.data_dir / f"collection-{col.id}.faiss"

    def secondary_path(self, col: CollectionRow) -> Path:
        return self.data_dir / f"collection-{col.id}.secondary.faiss"

    def sidecar_path(self, col: CollectionRow) -> Path:
        return self.data_dir / f"collection-{col.id}.cache.json"

    def open_indexes(self, col: CollectionRow) -> Indexes:
        """The index files as they are on disk (empty indexes for missing files)."""
        secondary = (VectorIndex.open(self.secondary_path(col), int(col.secondary_dim or 0))
                     if col.secondary else None)
        return Indexes(VectorIndex.open(self.index_path(col), col.dim), secondary)

    def empty_indexes(self, col: CollectionRow) -> Indexes:
        secondary = (VectorIndex.empty(self.secondary_path(col), int(col.secondary_dim or 0))
                     if col.secondary else None)
        return Indexes(VectorIndex.empty(self.index_path(col), col.dim), secondary)

    def remove_files(self, col: CollectionRow) -> None:
        """Delete this replica's cache of ``col`` (and the lock file of older versions)."""
        for path in (self.index_path(col), self.secondary_path(col), self.sidecar_path(col),
                     self.data_dir / f"collection-{col.id}.lock"):
            path.unlink(missing_ok=True)

    def uses_secondary(self, col: CollectionRow) -> bool:
        """Whether searches of ``col`` can use its secondary index (same model as ours)."""
        return (self.secondary is not None and col.secondary == self.secondary.name
                and col.secondary_dim == self.secondary.dim)

    # -- rows -----------------------------------------------------------------------------

    def collection(self, s: Session, tenant: str, name: str) -> CollectionRow:
        col = s.scalar(select(CollectionRow).where(CollectionRow.tenant == tenant,
                                                   CollectionRow.name == name))
        if col is None:
            raise CollectionNotFound(f"no collection named {name!r} for tenant {tenant!r}")
        return col

    def check_embedder(self, col: CollectionRow, *, write: bool = False) -> None:
        """The primary embedder must match; to write, so must the secondary one when the
        collection has a secondary index (a collection without one gets the primary only)."""
        if col.embedder != self.embedder.name or col.dim != self.embedder.dim:
            raise EmbedderMismatch(
                f"collection {col.name!r} was built with {col.embedder} ({col.dim}-d) but the "
                f"embedder now is {self.embedder.name} ({self.embedder.dim}-d); use the same "
                f"embedder or run `mentorly kb rebuild --collection {col.name}`")
        if write and col.secondary and not self.uses_secondary(col):
            now = self.secondary.name if self.secondary is not None else "none"
            raise EmbedderMismatch(
                f"collection {col.name!r} has a secondary index built with {col.secondary} "
                f"({col.secondary_dim}-d) but the secondary embedder now is {now}; configure the "
                f"same one or run `mentorly kb rebuild --collection {col.name}`")

    def ensure_collection(self, tenant: str, name: str) -> CollectionRow:
        name = name.strip()
        if not name or len(name) > 200:
            raise KnowledgeError("a collection name must have 1 to 200 characters")
        with self.sessions() as s:
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

    def fresh(self, col_id: int) -> CollectionRow:
        """The collection's row as the database has it now."""
        with self.sessions() as s:
            col = s.get(CollectionRow, col_id)
            if col is None:
                raise CollectionNotFound("the collection was deleted meanwhile")
            return col

    # -- listings -------------------------------------------------------------------------

    def collections(self, tenant: str | None = None) -> list[dict[str, Any]]:
        with self.sessions() as s:
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
        with self.sessions() as s:
            col = self.collection(s, tenant, collection)
            rows = s.scalars(select(DocumentRow).where(DocumentRow.collection_id == col.id,
                                                       DocumentRow.status == READY)
                             .order_by(DocumentRow.source))
            return [{"source": d.source, "title": d.title, "chunks": d.n_chunks,
                     "sha256": d.content_hash, "added": d.created_at.isoformat()} for d in rows]
