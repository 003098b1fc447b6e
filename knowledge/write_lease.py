"""One writer per collection across replicas: the collection's database lease (``kb:<id>``,
``knowledge.leases``) and the commit point that is fenced by it.

Every write (ingest, delete, rebuild, backfill, crash recovery) holds the lease. Each holding
gets its own holder name (this process's, plus a random part), so two threads of one process
exclude each other as two machines do.

A writer's commit point (``commit_point``) extends the lease *inside* the transaction that
changes the collection's ready documents, conditional on still being the holder, and bumps the
collection's generation. A writer whose lease ran out and was taken by another process (it
stalled longer than the time to live) therefore cannot commit: the UPDATE matches no row, the
transaction is rolled back and ``LeaseLost`` raised. On PostgreSQL the UPDATE also locks the
lease row until the commit, so a process taking the lease meanwhile waits for it and then sees
the extended expiry; on SQLite write transactions are serialised anyway.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from knowledge.catalog import Catalog
from knowledge.errors import CollectionBusy
from knowledge.leases import HOLDER, Lease, LeaseLost, LeaseRow, current_holder, try_acquire
from knowledge.store import CollectionRow

log = logging.getLogger(__name__)


def lease_name(collection_id: int) -> str:
    return f"kb:{collection_id}"


def _holder() -> str:
    return f"{HOLDER}/{secrets.token_hex(4)}"


@contextlib.contextmanager
def hold(catalog: Catalog, col: CollectionRow) -> Iterator[Lease]:
    """Hold ``col``'s lease for a write, waiting up to ``lock_timeout_s`` for another writer
    (then ``CollectionBusy`` naming it). The lease is renewed until the block ends."""
    name, holder = lease_name(col.id), _holder()
    config = catalog.config
    deadline = time.monotonic() + config.lock_timeout_s
    while not try_acquire(catalog.sessions, name, config.lease_ttl_s, holder):
        if time.monotonic() >= deadline:
            other = current_holder(catalog.sessions, name) or "another process"
            raise CollectionBusy(f"collection {col.name!r} is being written by {other}; "
                                 f"try again when it has finished")
        time.sleep(min(0.2, config.lease_ttl_s / 10))
    with Lease(catalog.sessions, name, config.lease_ttl_s, holder) as lease:
        yield lease


@contextlib.contextmanager
def attempt(catalog: Catalog, col: CollectionRow) -> Iterator[Lease | None]:
    """``col``'s lease if nobody holds it now, else None: never waits (a search's chores)."""
    name = lease_name(col.id)
    # a read first: while a writer holds the lease (the common case) nothing is written
    if current_holder(catalog.sessions, name) is not None:
        yield None
        return
    holder = _holder()
    if not try_acquire(catalog.sessions, name, catalog.config.lease_ttl_s, holder):
        yield None
        return
    with Lease(catalog.sessions, name, catalog.config.lease_ttl_s, holder) as lease:
        yield lease


def fence(s: Session, lease: Lease) -> None:
    """Extend ``lease`` within ``s``'s transaction if it is still ours; else roll back and
    raise ``LeaseLost``. Call just before committing a change of the collection."""
    lease.check()
    now = datetime.now(UTC)
    kept = s.execute(update(LeaseRow)
                     .where(LeaseRow.name == lease.name, LeaseRow.holder == lease.holder)
                     .values(expires_at=now + timedelta(seconds=lease.ttl_s)))
    if not kept.rowcount:  # type: ignore[attr-defined]
        s.rollback()
        lease.lost = True
        log.error("lease %s was taken by another process: this write is abandoned", lease.name)
        raise LeaseLost(f"the lease {lease.name!r} ran out while this process held it; "
                        f"nothing was committed")


def commit_point(s: Session, lease: Lease, collection_id: int) -> int:
    """Commit ``s``'s changes of the collection's ready documents, fenced by ``lease``, with
    the generation bumped in the same transaction; returns the new generation."""
    fence(s, lease)
    s.execute(update(CollectionRow).where(CollectionRow.id == collection_id)
              .values(generation=CollectionRow.generation + 1))
    generation = s.scalar(select(CollectionRow.generation)
                          .where(CollectionRow.id == collection_id))
    s.commit()
    return int(generation or 0)
