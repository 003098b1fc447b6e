"""Look after collections: compare index files with the database (``check``), re-embed a
collection into fresh index files (``rebuild``), delete a document or a whole collection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from tqdm import tqdm

from knowledge.catalog import Catalog
from knowledge.errors import CollectionNotFound, DocumentNotFound, KnowledgeError
from knowledge.recovery import Batch, flush, recover
from knowledge.splitting import Chunk
from knowledge.store import DELETING, READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import VectorIndex


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


class Maintenance:
    """Check, rebuild and delete in the collections of ``catalog``.

    ``forget(collection id)`` is called when a collection's index files are replaced or
    removed, so that searches drop what they keep in memory for it.
    """

    def __init__(self, catalog: Catalog, forget: Callable[[int], None]) -> None:
        self.catalog = catalog
        self._forget = forget

    def delete_collection(self, tenant: str, name: str) -> None:
        catalog = self.catalog
        with catalog.sessions() as s:
            col = catalog.collection(s, tenant, name)
            with catalog.write_lock(col):
                s.delete(col)
                s.commit()
                catalog.index_path(col).unlink(missing_ok=True)
                catalog.secondary_path(col).unlink(missing_ok=True)
                self._forget(col.id)

    def delete_document(self, tenant: str, collection: str, source: str) -> int:
        """Remove a document (by source name, or title when that is unique); returns its chunks."""
        catalog = self.catalog
        with catalog.sessions() as s:
            col = catalog.collection(s, tenant, collection)
        with catalog.write_lock(col):
            recover(catalog, col)
            with catalog.sessions() as s:
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
            index = catalog.open_indexes(col)
            index.remove(ids)
            batch = Batch(deleting=[doc.id])
            flush(catalog, col, index, batch)
            return len(ids)

    def check(self, tenant: str | None = None, collection: str | None = None) -> list[CheckResult]:
        """Compare each collection's index file with its database rows."""
        with self.catalog.sessions() as s:
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
        catalog = self.catalog
        with catalog.write_lock(col):
            recovered = recover(catalog, col)
        with catalog.sessions() as s:
            db_ids = set(s.scalars(select(ChunkRow.id).join(DocumentRow).where(
                ChunkRow.collection_id == col.id, DocumentRow.status == READY)))
            docs = s.scalar(select(func.count(DocumentRow.id)).where(
                DocumentRow.collection_id == col.id, DocumentRow.status == READY)) or 0
        result = CheckResult(tenant=col.tenant, collection=col.name, embedder=col.embedder,
                             index_vectors=0, db_chunks=len(db_ids), documents=int(docs),
                             recovered=recovered, secondary=col.secondary)
        files = [("", catalog.index_path(col), col.dim)]
        if col.secondary:
            files.append(("secondary ", catalog.secondary_path(col), int(col.secondary_dim or 0)))
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
        catalog = self.catalog
        embedder, secondary = catalog.embedder, catalog.secondary
        with catalog.sessions() as s:
            col = catalog.collection(s, tenant, collection)
        with catalog.write_lock(col):
            recover(catalog, col)
            with catalog.sessions() as s:
                rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta).join(DocumentRow)
                                 .where(ChunkRow.collection_id == col.id, DocumentRow.status == READY)
                                 .order_by(ChunkRow.id)).all()
            index = VectorIndex.empty(catalog.index_path(col), embedder.dim)
            index2 = (VectorIndex.empty(catalog.secondary_path(col), secondary.dim)
                      if secondary is not None else None)
            step = max(catalog.config.embed_batch, 1)
            with tqdm(total=len(rows), unit="chunk", disable=not progress,
                      desc=f"rebuild {col.name}") as bar:
                for i in range(0, len(rows), step):
                    part = rows[i:i + step]
                    texts = [Chunk(r.text, heading=(r.meta or {}).get("heading")).embedding_text()
                             for r in part]
                    ids = np.array([r.id for r in part], dtype=np.int64)
                    index.add(ids, embedder.embed_documents(texts))
                    if index2 is not None and secondary is not None:
                        index2.add(ids, secondary.embed_documents(texts))
                    bar.update(len(part))
            if index2 is not None:
                index2.save()
            index.save()
            with catalog.sessions() as s:
                s.execute(update(CollectionRow).where(CollectionRow.id == col.id).values(
                    embedder=embedder.name, dim=embedder.dim,
                    secondary=secondary.name if secondary else None,
                    secondary_dim=secondary.dim if secondary else None,
                    generation=CollectionRow.generation + 1))
                s.commit()
            if index2 is None:
                catalog.secondary_path(col).unlink(missing_ok=True)
            self._forget(col.id)
        return self.check(tenant, collection)[0]
