"""Look after collections: compare this replica's index cache with the database (``check``),
re-embed a collection's chunks into the database and a fresh cache (``rebuild``), delete a
document or a whole collection. Every change holds the collection's lease and commits through
``knowledge.write_lease.commit_point``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from tqdm import tqdm

from knowledge import cache
from knowledge.backfill import store_vectors
from knowledge.catalog import Catalog
from knowledge.errors import CollectionNotFound, DocumentNotFound, KnowledgeError
from knowledge.recovery import recover, settle_abandoned
from knowledge.splitting import Chunk
from knowledge.store import READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import to_blob
from knowledge.write_lease import commit_point, fence, hold


@dataclass
class CheckResult:
    tenant: str
    collection: str
    embedder: str
    index_vectors: int  # in this replica's cache
    db_chunks: int  # ready chunks in the database
    documents: int
    missing_in_index: int = 0
    extra_in_index: int = 0
    recovered: int = 0
    secondary: str | None = None
    secondary_vectors: int = 0
    problems: list[str] = field(default_factory=list)
    no_vector: int = 0  # ready chunks without a stored vector (a database from before them)
    differing: int = 0  # cached vectors that differ from the stored ones

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Maintenance:
    """Check, rebuild and delete in the collections of ``catalog``.

    ``changed(collection id)`` is called after a collection's documents changed and
    ``forget(collection id)`` when its cache was replaced or removed, so that this process's
    searches look at it again at once.
    """

    def __init__(self, catalog: Catalog, forget: Callable[[int], None],
                 changed: Callable[[int], None] | None = None) -> None:
        self.catalog = catalog
        self._forget = forget
        self._changed = changed or forget

    def delete_collection(self, tenant: str, name: str) -> None:
        catalog = self.catalog
        with catalog.sessions() as s:
            col = catalog.collection(s, tenant, name)
        with hold(catalog, col) as lease:
            with catalog.sessions() as s:
                s.execute(delete(ChunkRow).where(ChunkRow.collection_id == col.id))
                s.execute(delete(DocumentRow).where(DocumentRow.collection_id == col.id))
                s.execute(delete(CollectionRow).where(CollectionRow.id == col.id))
                fence(s, lease)
                s.commit()
        catalog.remove_files(col)  # other replicas drop theirs when they next look
        self._forget(col.id)

    def delete_document(self, tenant: str, collection: str, source: str) -> int:
        """Remove a document (by source name, or title when that is unique); returns its chunks."""
        catalog = self.catalog
        with catalog.sessions() as s:
            col = catalog.collection(s, tenant, collection)
        with hold(catalog, col) as lease:
            recover(catalog, col, lease)
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
                n = s.scalar(select(func.count(ChunkRow.id))
                             .where(ChunkRow.document_id == doc.id)) or 0
                s.execute(delete(ChunkRow).where(ChunkRow.document_id == doc.id))
                s.execute(delete(DocumentRow).where(DocumentRow.id == doc.id))
                generation = commit_point(s, lease, col.id)
            cache.update_files(catalog, catalog.fresh(col.id), generation)
        self._changed(col.id)
        return int(n)

    def check(self, tenant: str | None = None, collection: str | None = None) -> list[CheckResult]:
        """Compare this replica's cache of each collection with its database rows."""
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
        """Settle an abandoned write if the lease is free, bring the cache up to date if it is
        behind (normal: it is a cache), then compare its ids and vectors with the database's.
        A live writer's pending rows are its work in progress, not a problem."""
        catalog = self.catalog
        recovered = settle_abandoned(catalog, col)
        col = catalog.fresh(col.id)
        chunks = cache.ready_chunks(catalog, col)
        with catalog.sessions() as s:
            docs = s.scalar(select(func.count(DocumentRow.id)).where(
                DocumentRow.collection_id == col.id, DocumentRow.status == READY)) or 0
        result = CheckResult(tenant=col.tenant, collection=col.name, embedder=col.embedder,
                             index_vectors=0, db_chunks=len(chunks), documents=int(docs),
                             recovered=recovered, secondary=col.secondary)
        no1 = sum(1 for _, has1, _ in chunks if not has1)
        no2 = sum(1 for _, _, has2 in chunks if not has2) if col.secondary else 0
        result.no_vector = max(no1, no2)
        if result.no_vector:
            result.problems.append(
                f"{result.no_vector} chunks have no stored vector (stored before the database "
                f"held vectors); they are filled in when the collection is next searched or "
                f"written, or by `mentorly kb rebuild`")
        try:
            indexes = catalog.open_indexes(col)
        except KnowledgeError as exc:
            result.problems.append(f"this replica's index cache: {exc}")
            return result
        if cache.read_generation(catalog, col) != col.generation:
            cache.sync(catalog, col, indexes)
            cache.save(catalog, col, indexes, col.generation)
        wanted = [{cid for cid, has1, _ in chunks if has1}]
        if indexes.secondary is not None:
            wanted.append({cid for cid, _, has2 in chunks if has2})
        for label, index, want in zip(("", "secondary "), indexes.all(), wanted, strict=False):
            held = set(index.ids().tolist())
            if label:
                result.secondary_vectors = len(held)
            else:
                result.index_vectors = len(held)
            missing, extra = len(want - held), len(held - want)
            result.missing_in_index = max(result.missing_in_index, missing)
            result.extra_in_index = max(result.extra_in_index, extra)
            if missing:
                result.problems.append(f"{missing} chunks are in the database but not in this "
                                       f"replica's {label}index")
            if extra:
                result.problems.append(f"{extra} vectors in this replica's {label}index have no "
                                       f"ready chunk in the database")
        differ1, differ2 = cache.vector_differences(catalog, col, indexes)
        result.differing = max(differ1, differ2)
        for label, differ in (("", differ1), ("secondary ", differ2)):
            if differ:
                result.problems.append(f"{differ} vectors in this replica's {label}index differ "
                                       f"from the database's")
        return result

    def rebuild(self, tenant: str, collection: str, *, progress: bool = False) -> CheckResult:
        """Re-embed every chunk of the collection into the database and this replica's cache
        (also switches it to the current primary and secondary embedders, adding or dropping
        the secondary vectors). Other replicas rebuild their caches from the database when
        the embedders changed; with the same ones their cached vectors are the same."""
        catalog = self.catalog
        embedder, secondary = catalog.embedder, catalog.secondary
        with catalog.sessions() as s:
            col = catalog.collection(s, tenant, collection)
        with hold(catalog, col) as lease:
            recover(catalog, col, lease)
            with catalog.sessions() as s:
                rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta).join(DocumentRow)
                                 .where(ChunkRow.collection_id == col.id, DocumentRow.status == READY)
                                 .order_by(ChunkRow.id)).all()
            ids = np.array([r.id for r in rows], dtype=np.int64)
            vectors = np.zeros((len(rows), embedder.dim), dtype=np.float32)
            vectors2 = (np.zeros((len(rows), secondary.dim), dtype=np.float32)
                        if secondary is not None else None)
            step = max(catalog.config.embed_batch, 1)
            with tqdm(total=len(rows), unit="chunk", disable=not progress,
                      desc=f"rebuild {col.name}") as bar:
                for i in range(0, len(rows), step):
                    part = rows[i:i + step]
                    texts = [Chunk(r.text, heading=(r.meta or {}).get("heading")).embedding_text()
                             for r in part]
                    vectors[i:i + len(part)] = embedder.embed_documents(texts)
                    if vectors2 is not None and secondary is not None:
                        vectors2[i:i + len(part)] = secondary.embed_documents(texts)
                    bar.update(len(part))
            with catalog.sessions() as s:
                cids = ids.tolist()
                store_vectors(s, "vector", {cid: to_blob(v) for cid, v in zip(cids, vectors,
                                                                              strict=True)})
                store_vectors(s, "vector2", {cid: to_blob(vectors2[n]) if vectors2 is not None
                                             else None for n, cid in enumerate(cids)})
                s.execute(update(CollectionRow).where(CollectionRow.id == col.id).values(
                    embedder=embedder.name, dim=embedder.dim,
                    secondary=secondary.name if secondary else None,
                    secondary_dim=secondary.dim if secondary else None))
                generation = commit_point(s, lease, col.id)
            col = catalog.fresh(col.id)
            indexes = catalog.empty_indexes(col)
            indexes.primary.add(ids, vectors)
            if indexes.secondary is not None and vectors2 is not None:
                indexes.secondary.add(ids, vectors2)
            cache.save(catalog, col, indexes, generation)
        self._forget(col.id)
        return self.check(tenant, collection)[0]
