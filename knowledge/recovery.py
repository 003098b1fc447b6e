"""The write protocol of a collection: the commit point (``flush``) and crash recovery
(``recover``).

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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from knowledge.catalog import Catalog, Indexes
from knowledge.store import DELETING, PENDING, READY, ChunkRow, CollectionRow, DocumentRow

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Documents written to the index since the last commit point."""

    pending: list[int] = field(default_factory=list)
    deleting: list[int] = field(default_factory=list)
    chunks: int = 0

    def clear(self) -> None:
        self.pending.clear()
        self.deleting.clear()
        self.chunks = 0


def flush(catalog: Catalog, col: CollectionRow, index: Indexes, batch: Batch) -> None:
    """The commit point: replace the index file, then settle the documents."""
    if not batch.pending and not batch.deleting:
        return
    index.save()
    with catalog.sessions() as s:
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


def recover(catalog: Catalog, col: CollectionRow) -> int:
    """Finish or undo documents left ``pending``/``deleting`` by an interrupted write.

    Call with the collection's write lock held. Returns how many documents it settled.
    """
    with catalog.sessions() as s:
        unsettled = list(s.scalars(select(DocumentRow).where(
            DocumentRow.collection_id == col.id, DocumentRow.status.in_((PENDING, DELETING)))))
        if not unsettled:
            return 0
        index = catalog.open_indexes(col)
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
