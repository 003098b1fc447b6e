"""Is a key still unrevoked? One primary-key read of its ``revoked_at``, made on every cached use
of a key, so that a revocation by any process (``mentorly keys revoke``, another server on the
same database) takes effect on the key's very next request.

On a SQLite file the read goes through a connection of its own in autocommit mode: about 10 µs
and no pool checkout (which could wait while worker threads hold every pooled connection), so
the event loop can afford it (``inline``). Elsewhere it goes through the engine's pool, a network
round trip, and callers make it in a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

CheckFailed = (sqlite3.Error, SQLAlchemyError)  # the caller falls back to its full lookup


class RevocationCheck:
    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine = engine
        self._statement = select(table.c.revoked_at).where(table.c.id == bindparam("id"))
        self._sql = f"SELECT revoked_at FROM {table.name} WHERE id = ?"
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = path or ""
        self.inline = bool(path) and path != ":memory:" and not self._path.startswith("file:")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def active(self, row_id: str) -> bool:
        """False when the row is revoked or gone; raises one of ``CheckFailed`` if the database
        cannot say (a SQLite file not in WAL mode, busy with a write, answers after 0.2 s)."""
        if self.inline:
            with self._lock:
                if self._conn is None:
                    self._conn = sqlite3.connect(self._path, isolation_level=None, timeout=0.2,
                                                 check_same_thread=False)
                row = self._conn.execute(self._sql, (row_id,)).fetchone()
        else:
            with self._engine.connect() as conn:
                row = conn.execute(self._statement, {"id": row_id}).first()
        return row is not None and row[0] is None
