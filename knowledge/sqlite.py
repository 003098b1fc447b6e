"""Connection set-up for SQLite files, shared by the docstore and the product's database."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any


def use_wal(cursor: Any, attempts: int = 50) -> None:
    """Put the file in WAL mode (persistent: a no-op once done).

    Switching needs an exclusive lock, and SQLite does not wait for it through the busy
    timeout: several connections opening a new file at the same moment (replicas, or threads
    of one process) can get "database is locked" here. Read the mode first, and retry briefly.
    """
    for attempt in range(attempts):
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(min(0.01 * (attempt + 1), 0.1))


def pragmas(busy_timeout_ms: int, *, synchronous: str | None = None) -> Callable[[Any, Any], None]:
    """A ``connect`` event listener: the busy timeout first (everything after it waits for
    locks), WAL, foreign keys, and ``synchronous`` when given."""

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        use_wal(cur)
        if synchronous:
            cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect
