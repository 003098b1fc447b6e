"""The write protocol of a collection: the commit point (``flush``) and crash recovery
(``recover``, ``settle_abandoned``).

The database is the source of truth, vectors included. An ingest writes each new document
version ``pending``, with its chunks and their vectors; pending rows are never searched. At a
commit point (every ``flush_chunks`` chunks, and at the end) one transaction marks the batch's
pending versions ``ready``, deletes the versions they replace and bumps the collection's
generation, fenced by the writer's lease (``knowledge.write_lease``): a writer that lost its
lease commits nothing. Only then is this replica's index cache written (``knowledge.cache``);
other replicas see the new generation and bring their caches up to date from the database.

Recovery. Rows left ``pending`` (or ``deleting``, which versions from before this protocol
used to mark a replaced document) are settled only by a holder of the collection's lease.
A live writer keeps renewing its lease, so whatever a new holder finds unsettled was left by a
writer that died or lost its lease: its pending versions are undone (their rows deleted) and
``deleting`` ones restored to ready, with the generation bumped, in one transaction. Every
write recovers when it takes the lease, and searches call ``settle_abandoned`` when they see
unsettled rows: it takes the lease only when nobody holds it, never waiting. Re-running an
interrupted ingest completes it: the committed files are skipped as unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from knowledge import cache
from knowledge.catalog import Catalog, Indexes
from knowledge.leases import Lease
from knowledge.store import DELETING, PENDING, READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.write_lease import attempt, commit_point

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Documents written since the last commit point: new versions (``pending``) and the ready
    versions they replace (deleted at the commit point)."""

    pending: list[int] = field(default_factory=list)
    deleting: list[int] = field(default_factory=list)
    chunks: int = 0

    def clear(self) -> None:
        self.pending.clear()
        self.deleting.clear()
        self.chunks = 0


def flush(catalog: Catalog, col: CollectionRow, index: Indexes, batch: Batch,
          lease: Lease) -> int | None:
    """The commit point: settle the batch in the database, then write this replica's cache
    (``index`` must hold the ready chunks with the batch applied). Returns the new generation
    (None when the batch was empty)."""
    if not batch.pending and not batch.deleting:
        return None
    with catalog.sessions() as s:
        if batch.deleting:
            s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(batch.deleting)))
            s.execute(delete(DocumentRow).where(DocumentRow.id.in_(batch.deleting)))
        if batch.pending:
            s.execute(update(DocumentRow).where(DocumentRow.id.in_(batch.pending))
                      .values(status=READY))
        generation = commit_point(s, lease, col.id)
    cache.save(catalog, col, index, generation)
    batch.clear()
    return generation


def recover(catalog: Catalog, col: CollectionRow, lease: Lease) -> int:
    """Undo what a dead writer left (see the module docstring); ``lease`` must be ``col``'s.
    Returns how many documents it settled."""
    with catalog.sessions() as s:
        unsettled = s.execute(select(DocumentRow.id, DocumentRow.status).where(
            DocumentRow.collection_id == col.id,
            DocumentRow.status.in_((PENDING, DELETING)))).all()
        if not unsettled:
            return 0
        pending = [doc_id for doc_id, status in unsettled if status == PENDING]
        deleting = [doc_id for doc_id, status in unsettled if status == DELETING]
        if pending:
            s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(pending)))
            s.execute(delete(DocumentRow).where(DocumentRow.id.in_(pending)))
        if deleting:
            s.execute(update(DocumentRow).where(DocumentRow.id.in_(deleting))
                      .values(status=READY))
        commit_point(s, lease, col.id)
    log.warning("collection %s/%s: settled an interrupted write: undid %d pending documents, "
                "restored %d", col.tenant, col.name, len(pending), len(deleting))
    return len(unsettled)


def settle_abandoned(catalog: Catalog, col: CollectionRow) -> int:
    """``recover`` if nobody holds the collection's lease (a live writer's pending rows are
    its work in progress); never waits. Returns how many documents it settled."""
    with attempt(catalog, col) as lease:
        if lease is None:
            return 0
        return recover(catalog, col, lease)
