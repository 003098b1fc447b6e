"""Where ``RateLimiter`` keeps its per-minute counts: the database (default), Redis, or memory.

Each counter's ``hit`` is one atomic step: add this request to its key's count for this minute,
read the previous minute's count, and, when the sliding window (``admits``) refuses, take the
request back out, so refused requests never count and concurrent replicas never admit more
than the limit between them.

- ``DatabaseCounter``: the ``rate_counts`` table (key, minute, count). One transaction: an
  ``INSERT ... ON CONFLICT (key, minute) DO UPDATE SET count = rate_counts.count + 1
  RETURNING count`` (SQLite 3.35+ and PostgreSQL), which holds the row's write lock until
  commit, then the previous minute's row, then the undo when refused. Rows older than the
  previous minute are deleted once a minute per counter, not on every request.
- ``RedisCounter``: redis-py (pinned ``redis==8.1.0``) with a Lua script doing the same
  INCR / GET / DECR atomically on per-minute keys that expire after three minutes. The
  ``limits`` package would do this too, but it is not available offline here, and the
  script is short.
- ``MemoryCounter``: one process only (no database given: unit tests, scripts).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from assistant.storage.rate_counts import RateCount

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

EPSILON = 1e-9  # float slack in the window formula: an exact fit is admitted
REDIS_TTL_S = 180  # a minute's key is read during that minute and the next
REDIS_TIMEOUT_S = 1.0  # a Redis that does not answer within this fails open (see ratelimit)
REDIS_PREFIX = "mentorly:rate:"


def admits(previous: int, current: int, weight: float, limit: int) -> bool:
    """Whether one more request fits: the previous minute's count weighted by the part of the
    window still inside it, plus this minute's count, plus this request."""
    return previous * weight + current + 1 <= limit + EPSILON


@dataclass(frozen=True)
class Hit:
    admitted: bool
    previous: int  # the previous minute's count
    current: int  # this minute's count afterwards: with this request if admitted, else without


class Counter(Protocol):
    store: str  # for messages: "the database", "Redis", "memory"
    blocking: bool  # whether ``hit`` does I/O
    outage_errors: tuple[type[Exception], ...]  # what an unavailable store raises

    def hit(self, key: str, minute: int, weight: float, limit: int) -> Hit: ...


class MemoryCounter:
    """This process's counts (a dict), with the same window as the shared counters."""

    store = "memory"
    blocking = False
    outage_errors: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._pruned = 0

    def hit(self, key: str, minute: int, weight: float, limit: int) -> Hit:
        with self._lock:
            if minute > self._pruned:
                self._pruned = minute
                for old in [k for k in self._counts if k[1] < minute - 1]:
                    del self._counts[old]
            previous = self._counts.get((key, minute - 1), 0)
            current = self._counts.get((key, minute), 0)
            if not admits(previous, current, weight, limit):
                return Hit(False, previous, current)
            self._counts[(key, minute)] = current + 1
            return Hit(True, previous, current + 1)


class DatabaseCounter:
    """Counts in the ``rate_counts`` table of ``engine`` (SQLite or PostgreSQL)."""

    store = "the database"
    blocking = True
    outage_errors: tuple[type[Exception], ...] = (SQLAlchemyError,)
    table: ClassVar[Any] = RateCount.__table__

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pruned = 0  # the minute of the last clean-up
        self._prune_lock = threading.Lock()

    def _upsert(self, key: str, minute: int) -> Executable:
        """Add one to (key, minute), creating the row at 1; returns the new count."""
        t = self.table
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return (pg_insert(t).values(key=key, minute=minute, count=1)
                    .on_conflict_do_update(index_elements=[t.c.key, t.c.minute],
                                           set_={"count": t.c.count + 1}).returning(t.c.count))
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return (sqlite_insert(t).values(key=key, minute=minute, count=1)
                .on_conflict_do_update(index_elements=[t.c.key, t.c.minute],
                                       set_={"count": t.c.count + 1}).returning(t.c.count))

    def hit(self, key: str, minute: int, weight: float, limit: int) -> Hit:
        t = self.table
        upsert = self._upsert(key, minute)
        this_row = (t.c.key == key) & (t.c.minute == minute)
        # The upsert comes first: it takes the row's write lock (PostgreSQL) or the database's
        # (SQLite) until commit, so the read and the undo below are part of one atomic step.
        with self.engine.begin() as conn:
            current = int(conn.execute(upsert).scalar_one())
            previous = int(conn.execute(select(t.c.count).where(
                (t.c.key == key) & (t.c.minute == minute - 1))).scalar() or 0)
            admitted = admits(previous, current - 1, weight, limit)
            if not admitted:
                conn.execute(update(t).where(this_row).values(count=t.c.count - 1))
                current -= 1
        if minute > self._pruned:
            self._prune(minute)
        return Hit(admitted, previous, current)

    def _prune(self, minute: int) -> None:
        """Delete the rows no window reads any more (older than the previous minute)."""
        if not self._prune_lock.acquire(blocking=False):
            return  # another thread of this process is at it
        try:
            if minute <= self._pruned:
                return
            self._pruned = minute
            with self.engine.begin() as conn:
                conn.execute(delete(self.table).where(self.table.c.minute < minute - 1))
        except SQLAlchemyError as exc:  # harmless: the next minute tries again
            log.debug("rate_counts clean-up failed: %s", exc)
        finally:
            self._prune_lock.release()


_LUA_HIT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[2]) + current > tonumber(ARGV[1]) + 1e-9 then
  redis.call('DECR', KEYS[1])
  return {0, previous, current - 1}
end
return {1, previous, current}
"""


class RedisCounter:
    """Counts in Redis: ``mentorly:rate:{<key>}:<minute>``, updated by one Lua script."""

    store = "Redis"
    blocking = True

    def __init__(self, client: redis.Redis) -> None:
        import redis as redis_module

        self.outage_errors: tuple[type[Exception], ...] = (redis_module.RedisError,)
        self._script = client.register_script(_LUA_HIT)

    def hit(self, key: str, minute: int, weight: float, limit: int) -> Hit:
        # ``{key}`` is a hash tag: on a Redis Cluster both minutes of a key live on one node
        keys = [f"{REDIS_PREFIX}{{{key}}}:{minute}", f"{REDIS_PREFIX}{{{key}}}:{minute - 1}"]
        admitted, previous, current = self._script(keys=keys, args=[limit, repr(weight), REDIS_TTL_S])
        return Hit(bool(admitted), int(previous), int(current))


_CLIENTS: dict[str, redis.Redis] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_redis(url: str) -> redis.Redis:
    """One client (one connection pool) per URL per process, with short timeouts: a Redis that
    does not answer fails open quickly instead of holding requests."""
    import redis as redis_module

    with _CLIENTS_LOCK:
        client = _CLIENTS.get(url)
        if client is None:
            client = _CLIENTS[url] = redis_module.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S,
                health_check_interval=30)
        return client
