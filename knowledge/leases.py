"""Database leases: one holder at a time for a named job, across processes and machines.

A lease is a row (name, holder, expires_at). Taking it succeeds when nobody holds it, when the
holder's time ran out (the holder died or hung), or when the caller already holds it. A holder
that works longer than the time to live renews it (``Lease`` does so from a thread). Expiry
uses each process's UTC clock, so replicas need synchronised clocks (NTP); the time to live
should be many times the worst clock skew.

Used for a knowledge collection's writes (ingest, delete, rebuild, crash recovery), the
scheduled recommender retrain, and anything else that must run on one replica only.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from knowledge.store import KnowledgeTables

log = logging.getLogger(__name__)

#: This process, as lease holders name it (host, pid and a random part: pids are reused).
HOLDER = f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseRow(KnowledgeTables):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite returns naive values


def try_acquire(sessions: sessionmaker[Session], name: str, ttl_s: float,
                holder: str = HOLDER) -> bool:
    """Take (or extend) the lease ``name`` for ``ttl_s`` seconds; False when another live
    holder has it. Atomic on SQLite and PostgreSQL: a conditional UPDATE, else an INSERT that
    fails on the primary key when another process inserted first."""
    now = _now()
    expires = now + timedelta(seconds=ttl_s)
    with sessions() as s:
        taken = s.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name,
                   (LeaseRow.expires_at < now) | (LeaseRow.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=expires))
        s.commit()
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
        if s.get(LeaseRow, name) is not None:
            return False
    try:
        with sessions() as s:
            s.add(LeaseRow(name=name, holder=holder, acquired_at=now, expires_at=expires))
            s.commit()
        return True
    except IntegrityError:
        return False  # inserted by another process a moment ago


def renew(sessions: sessionmaker[Session], name: str, ttl_s: float, holder: str = HOLDER) -> bool:
    """Push the expiry of a lease we hold; False when it is no longer ours."""
    with sessions() as s:
        done = s.execute(update(LeaseRow)
                         .where(LeaseRow.name == name, LeaseRow.holder == holder)
                         .values(expires_at=_now() + timedelta(seconds=ttl_s)))
        s.commit()
        return bool(done.rowcount)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], name: str, holder: str = HOLDER) -> None:
    with sessions() as s:
        s.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))
        s.commit()


def current_holder(sessions: sessionmaker[Session], name: str) -> str | None:
    """Who holds ``name`` now (None when free or expired)."""
    with sessions() as s:
        row = s.scalar(select(LeaseRow).where(LeaseRow.name == name))
        if row is None or _aware(row.expires_at) < _now():
            return None
        return row.holder


class LeaseLost(RuntimeError):
    """The lease ran out while held (the process stalled longer than its time to live) and
    another holder may have taken it: the work must stop without committing."""


class Lease:
    """A held lease, renewed every third of its time to live until ``close``.

    ``check()`` raises ``LeaseLost`` if a renewal found the lease taken; call it before each
    commit point of a long job."""

    def __init__(self, sessions: sessionmaker[Session], name: str, ttl_s: float,
                 holder: str = HOLDER) -> None:
        self.sessions, self.name, self.ttl_s, self.holder = sessions, name, ttl_s, holder
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name=f"lease-{name}")
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not renew(self.sessions, self.name, self.ttl_s, self.holder):
                    self.lost = True
                    log.error("lease %s was lost (held by another process now)", self.name)
                    return
            except Exception:  # a database hiccup: try again at the next tick
                log.warning("could not renew lease %s", self.name, exc_info=True)

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"the lease {self.name!r} ran out while this process held it")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self.lost:
            release(self.sessions, self.name, self.holder)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
