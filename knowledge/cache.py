"""This replica's cache of a collection's vectors: FAISS files in ``data_dir`` that can always be
rebuilt from the database, which holds every chunk's vectors (``knowledge.store``).

Files: ``collection-<id>.faiss``, ``collection-<id>.secondary.faiss`` and the sidecar
``collection-<id>.cache.json``: the collection generation the files reflect, the embedders
they were built with, and the signature (inode, mtime, size) of each file as written. The
sidecar is written after the files, each atomically. A sidecar whose signatures do not match
the files on disk (a crash between the writes, or two processes of this machine writing at
once) says nothing, and neither does a missing one (a fresh replica, or a folder from before
the database held vectors): the generation is then unknown.

Bringing indexes up to date (``sync``) never trusts a generation to say *what* changed: it
compares the ids the indexes hold with the database's ready chunks, removes the ids that are no
longer ready and adds the missing ones with their vectors read from the database. Whatever
state the indexes were in (empty, behind, left by a crash, legacy), they end equal to the
ready chunks as of the generation read before the comparison; a generation only says whether
a comparison is needed. Chunks whose vectors are NULL (a database from before the vectors
were stored) are left out and counted, for ``knowledge.backfill``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from knowledge.atomic import atomic_write_text
from knowledge.catalog import Catalog, Indexes
from knowledge.errors import IndexCorrupt
from knowledge.store import READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import VectorIndex, file_signature, from_blob

log = logging.getLogger(__name__)

_BATCH = 1000  # ids per query when reading vectors


def identity(col: CollectionRow) -> list[Any]:
    """What a cache's vectors depend on besides the generation: the collection's embedders."""
    return [col.id, col.embedder, col.dim, col.secondary, col.secondary_dim]


def _signatures(catalog: Catalog, col: CollectionRow) -> dict[str, Any]:
    sig2 = file_signature(catalog.secondary_path(col)) if col.secondary else None
    return {"primary": file_signature(catalog.index_path(col)), "secondary": sig2}


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples as lists, as a sidecar read back has them


def read_generation(catalog: Catalog, col: CollectionRow) -> int | None:
    """The generation the files on disk reflect; None when unknown (see the module docstring)."""
    try:
        state = json.loads(catalog.sidecar_path(col).read_text(encoding="utf-8"))
        generation = int(state["generation"])
        if state["identity"] != _as_json(identity(col)):
            return None
        if state["files"] != _as_json(_signatures(catalog, col)):
            return None
        return generation
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load(catalog: Catalog, col: CollectionRow) -> tuple[Indexes, int | None]:
    """The cache on disk and the generation it reflects (None: unknown). Unreadable files are
    logged and replaced by empty indexes: the database has everything they held."""
    generation = read_generation(catalog, col)
    try:
        indexes = catalog.open_indexes(col)
    except IndexCorrupt as exc:
        log.warning("collection %s/%s: %s; rebuilding this replica's cache from the database",
                    col.tenant, col.name, exc)
        return catalog.empty_indexes(col), None
    if generation is not None and read_generation(catalog, col) != generation:
        generation = None  # the files were replaced while being read
    return indexes, generation


def save(catalog: Catalog, col: CollectionRow, indexes: Indexes, generation: int) -> None:
    """Write the indexes and then the sidecar saying they reflect ``generation``. Best effort:
    a cache that cannot be written (a full disk) is logged, never fails the caller."""
    try:
        indexes.save(durable=False)  # a cache: a power cut may cost a rebuild, not data
        if indexes.secondary is None:
            catalog.secondary_path(col).unlink(missing_ok=True)
        state = {"generation": generation, "identity": identity(col),
                 "files": _signatures(catalog, col)}
        atomic_write_text(catalog.sidecar_path(col), json.dumps(state), durable=False,
                          private=True)
    except (OSError, RuntimeError):
        log.warning("collection %s/%s: could not write this replica's index cache",
                    col.tenant, col.name, exc_info=True)


def update_files(catalog: Catalog, col: CollectionRow, generation: int) -> None:
    """Bring the cache files to ``generation``, which the database has now (a writer's own
    replica after its commit, so that a process starting here finds them current)."""
    indexes, have = load(catalog, col)
    if have != generation:
        sync(catalog, col, indexes)
        save(catalog, col, indexes, generation)


@dataclass
class SyncReport:
    added: int = 0
    removed: int = 0
    no_vector: int = 0  # ready chunks without a primary vector (need a backfill)
    no_vector2: int = 0  # ... without a secondary vector, in a collection with a secondary
    bad: int = 0  # vectors of the wrong length (left out)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def ready_chunks(catalog: Catalog, col: CollectionRow) -> list[tuple[int, bool, bool]]:
    """(chunk id, has a primary vector, has a secondary vector) of the ready chunks."""
    with catalog.sessions() as s:
        rows = s.execute(select(ChunkRow.id, ChunkRow.vector.is_not(None),
                                ChunkRow.vector2.is_not(None))
                         .join(DocumentRow)
                         .where(ChunkRow.collection_id == col.id, DocumentRow.status == READY)
                         ).all()
    return [(int(r[0]), bool(r[1]), bool(r[2])) for r in rows]


def sync(catalog: Catalog, col: CollectionRow, indexes: Indexes) -> SyncReport:
    """Make ``indexes`` hold exactly the ready chunks that have vectors (module docstring)."""
    report = SyncReport()
    rows = ready_chunks(catalog, col)
    report.no_vector = sum(1 for _, has1, _ in rows if not has1)
    if col.secondary:
        report.no_vector2 = sum(1 for _, _, has2 in rows if not has2)
    targets = [(indexes.primary, ChunkRow.vector, {cid for cid, has1, _ in rows if has1})]
    if indexes.secondary is not None:
        targets.append((indexes.secondary, ChunkRow.vector2,
                        {cid for cid, _, has2 in rows if has2}))
    for index, column, wanted in targets:
        held = set(index.ids().tolist())
        extra = sorted(held - wanted)
        if extra:
            report.removed += index.remove(extra)
        missing = sorted(wanted - held)
        for start in range(0, len(missing), _BATCH):
            part = missing[start:start + _BATCH]
            with catalog.sessions() as s:
                found = s.execute(select(ChunkRow.id, column).where(ChunkRow.id.in_(part))).all()
            ids, vectors = [], []
            for cid, blob in found:
                vector = from_blob(blob, index.dim)
                if vector is None:
                    if blob is not None:
                        report.bad += 1
                    continue
                ids.append(cid)
                vectors.append(vector)
            if ids:
                index.add(np.array(ids, dtype=np.int64), np.stack(vectors))
                report.added += len(ids)
    if report.bad:
        log.error("collection %s/%s: %d stored vectors have the wrong length; run "
                  "`mentorly kb rebuild --collection %s`", col.tenant, col.name, report.bad,
                  col.name)
    return report


def vector_differences(catalog: Catalog, col: CollectionRow,
                       indexes: Indexes) -> tuple[int, int]:
    """How many vectors of the primary and the secondary index differ from the database's."""
    counts = []
    targets: list[tuple[VectorIndex | None, Any]] = [(indexes.primary, ChunkRow.vector),
                                                      (indexes.secondary, ChunkRow.vector2)]
    for index, column in targets:
        differ = 0
        if index is not None:
            held = sorted(set(index.ids().tolist()))
            for start in range(0, len(held), _BATCH):
                part = held[start:start + _BATCH]
                with catalog.sessions() as s:
                    found = s.execute(select(ChunkRow.id, column)
                                      .where(ChunkRow.id.in_(part))).all()
                cached = index.vectors(part)
                for cid, blob in found:
                    stored = from_blob(blob, index.dim)
                    if stored is not None and cid in cached and \
                            not np.allclose(stored, cached[cid], atol=1e-5):
                        differ += 1
        counts.append(differ)
    return counts[0], counts[1]

