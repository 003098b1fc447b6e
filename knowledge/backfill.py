"""Fill in the vectors of chunks stored before the database held them (``ChunkRow.vector`` or
``vector2`` NULL: their vectors were only in the index files of the one machine then).

Run under the collection's lease when a collection is opened for a write or a search. A vector
is taken from this replica's index file when that file holds the chunk's id and was built with
the collection's embedders (the upgrade of a single machine: no embedding at all), otherwise
the chunk's text is embedded again. Each batch is committed with the generation bumped, so
other replicas pick the vectors up as they come.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from knowledge.cache import identity
from knowledge.catalog import Catalog, Indexes
from knowledge.embedders import Embedder
from knowledge.errors import KnowledgeError
from knowledge.leases import Lease
from knowledge.splitting import Chunk
from knowledge.store import READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import VectorIndex, to_blob
from knowledge.write_lease import attempt, commit_point

log = logging.getLogger(__name__)

_BATCH = 256  # chunks per transaction


def store_vectors(s: Session, column: str, values: dict[int, bytes | None]) -> None:
    """Set ``column`` (``vector`` or ``vector2``) of the chunks ``values`` names, in one
    executemany within ``s``'s transaction."""
    if not values:
        return
    table = ChunkRow.__table__
    stmt = table.update().where(table.c.id == bindparam("chunk_id")).values(  # type: ignore[attr-defined]
        {column: bindparam("blob")})
    s.execute(stmt, [{"chunk_id": cid, "blob": blob} for cid, blob in values.items()])


def _null_vectors(col: CollectionRow) -> Any:
    """The condition: a chunk of ``col`` lacks a vector the collection has an index for."""
    condition: ColumnElement[bool] = ChunkRow.vector.is_(None)
    if col.secondary:
        condition = or_(condition, ChunkRow.vector2.is_(None))
    return condition


def needs_backfill(catalog: Catalog, col: CollectionRow) -> bool:
    """Whether a ready chunk of ``col`` has no stored vector (one query)."""
    with catalog.sessions() as s:
        return bool(s.scalar(select(exists().where(
            ChunkRow.collection_id == col.id, _null_vectors(col),
            ChunkRow.document_id == DocumentRow.id, DocumentRow.status == READY))))


def _local_indexes(catalog: Catalog, col: CollectionRow) -> Indexes | None:
    """This replica's index files, when they can be trusted for ``col``'s embedders: written
    for this collection by a version that recorded them (a sidecar), or from before sidecars."""
    try:
        state = json.loads(catalog.sidecar_path(col).read_text(encoding="utf-8"))
        if state.get("identity") != identity(col):
            return None
    except FileNotFoundError:
        pass  # an index folder from before the database held vectors
    except (OSError, ValueError, AttributeError):
        return None
    try:
        return catalog.open_indexes(col)
    except KnowledgeError:
        return None


def _fill(texts: list[str], ids: list[int], local: VectorIndex | None,
          embedder: Embedder | None) -> tuple[dict[int, np.ndarray], int]:
    """Vectors for ``ids``: from ``local`` where it has them, else embedded (when an embedder
    is given). Returns them and how many were embedded."""
    out = local.vectors(ids) if local is not None else {}
    todo = [n for n, cid in enumerate(ids) if cid not in out]
    if todo and embedder is not None:
        vectors = embedder.embed_documents([texts[n] for n in todo])
        for n, vector in zip(todo, vectors, strict=True):
            out[ids[n]] = np.asarray(vector, dtype=np.float32)
    return out, len(todo) if embedder is not None else 0


def backfill(catalog: Catalog, col: CollectionRow, lease: Lease) -> int:
    """Store the missing vectors of ``col``'s ready chunks; returns how many chunks got one.

    The primary vectors need the collection's embedder (the caller checked it); secondary ones
    come from the local secondary file or the configured secondary embedder when it is the
    collection's, and stay NULL otherwise (searches then rank those chunks without it)."""
    with catalog.sessions() as s:
        rows = s.execute(select(ChunkRow.id, ChunkRow.text, ChunkRow.meta,
                                ChunkRow.vector.is_(None), ChunkRow.vector2.is_(None))
                         .join(DocumentRow)
                         .where(ChunkRow.collection_id == col.id, DocumentRow.status == READY,
                                _null_vectors(col))
                         .order_by(ChunkRow.id)).all()
    if not rows:
        return 0
    log.warning("collection %s/%s: %d chunks have no stored vector (stored before the database "
                "held vectors); filling them in", col.tenant, col.name, len(rows))
    local = _local_indexes(catalog, col)
    secondary = catalog.secondary if catalog.uses_secondary(col) else None
    started, filled, embedded = time.monotonic(), 0, 0
    for start in range(0, len(rows), _BATCH):
        part = rows[start:start + _BATCH]
        texts = [Chunk(r.text, heading=(r.meta or {}).get("heading")).embedding_text()
                 for r in part]
        values: dict[str, dict[int, bytes | None]] = {"vector": {}, "vector2": {}}
        need1 = [n for n, r in enumerate(part) if r[3]]
        if need1:
            got, n_embedded = _fill([texts[n] for n in need1], [part[n].id for n in need1],
                                    local.primary if local is not None else None,
                                    catalog.embedder)
            embedded += n_embedded
            values["vector"].update((cid, to_blob(v)) for cid, v in got.items())
        need2 = [n for n, r in enumerate(part) if r[4]] if col.secondary else []
        if need2:
            got, n_embedded = _fill([texts[n] for n in need2], [part[n].id for n in need2],
                                    local.secondary if local is not None else None, secondary)
            embedded += n_embedded
            values["vector2"].update((cid, to_blob(v)) for cid, v in got.items())
        if values["vector"] or values["vector2"]:
            with catalog.sessions() as s:
                for column, blobs in values.items():
                    store_vectors(s, column, blobs)
                commit_point(s, lease, col.id)
        filled += len(set(values["vector"]) | set(values["vector2"]))
        log.info("collection %s/%s: vectors filled in for %d of %d chunks (%d embedded, "
                 "%.0f s)", col.tenant, col.name, filled, len(rows), embedded,
                 time.monotonic() - started)
    missing2 = sum(1 for r in rows if r[4]) if col.secondary and secondary is None else 0
    if missing2:
        log.warning("collection %s/%s: the secondary embedder %s is not configured here, so "
                    "chunks without a local secondary vector keep none", col.tenant, col.name,
                    col.secondary)
    return filled


def backfill_if_free(catalog: Catalog, col: CollectionRow) -> int:
    """``backfill`` when nobody holds the collection's lease (a search's chore; never waits)."""
    with attempt(catalog, col) as lease:
        if lease is None:
            log.info("collection %s/%s: vectors to fill in, but another process is writing "
                     "the collection; searching the chunks that have them", col.tenant, col.name)
            return 0
        return backfill(catalog, col, lease)
