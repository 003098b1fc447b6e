"""Per-key request limits per minute, counted where every replica sees the same numbers.

``make_limiter`` builds the one kind of ``RateLimiter`` the app uses (API keys, per-key and
per-user quotas); ``per_minute`` 0 means unlimited. The counts live in Redis when
``redis_url`` is set, else in the database's ``rate_counts`` table, else (no database: a unit
test, a one-off script) in this process's memory (``assistant.security.rate_counters``).

The algorithm is a sliding-window counter: one count per key and wall-clock minute, and a
request at fraction ``f`` of minute ``m`` is admitted when

    count(m - 1) * (1 - f) + count(m) + 1 <= per_minute

so a burst at the end of one minute still counts at the start of the next (a fixed window
would admit twice the limit across the boundary). It is an approximation: it assumes the
previous minute's requests were spread evenly, so right after a burst at the very end of a
minute it refuses, and as the minute goes on it admits up to ``per_minute * f`` more. Refused
requests are not counted (the increment is undone in the same atomic step), so a client that
keeps retrying while refused is admitted as soon as ``retry_after_s`` says. ``retry_after_s``
is the first whole second at which the formula admits a request, assuming no other traffic;
because of the even-spread assumption it can exceed 60 s (up to 120 s for a limit of 1).

Minutes are wall-clock (``time.time() // 60``), shared by the replicas: keep their clocks in
sync (NTP); a replica seconds off counts a little early or late, nothing worse.

An outage of the counter's store (database or Redis down, a timeout) lets the request through
with a logged warning (at most one a minute per limiter): a limiter outage must not become a
full outage. The rest of the request still needs the database, so this matters most for Redis.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from assistant.errors import ConfigError, RateLimited
from assistant.security.rate_counters import EPSILON, Counter, MemoryCounter, admits

if TYPE_CHECKING:
    from assistant.storage import Database

log = logging.getLogger(__name__)

MAX_KEY_CHARS = 250  # rate_counts.key is 300 characters: the scope and a colon fit beside it
WARN_EVERY_S = 60.0


def retry_after(now: float, previous: int, current: int, limit: int) -> int:
    """Whole seconds from ``now`` until the sliding window admits one request, assuming no
    other request is admitted meanwhile. ``previous`` and ``current`` are the admitted counts
    of the minute before ``now``'s and of ``now``'s minute."""
    minute = int(now // 60)
    start = minute * 60.0

    def admitted_at(t: float) -> bool:
        m = int(t // 60)
        weight = 1.0 - (t - m * 60.0) / 60.0
        if m == minute:
            return admits(previous, current, weight, limit)
        if m == minute + 1:  # this minute's count becomes the previous one
            return admits(current, 0, weight, limit)
        return admits(0, 0, weight, limit)

    candidates = [start + 120.0]  # two minutes on, both counts are gone
    if previous > 0 and current + 1 <= limit:  # later this minute, as the previous one fades
        candidates.append(start + 60.0 * (1.0 - (limit - current - 1) / previous))
    if current > 0:  # next minute, as this minute's count fades
        candidates.append(start + 60.0 + 60.0 * max(0.0, 1.0 - (limit - 1) / current))
    else:
        candidates.append(start + 60.0)
    for moment in sorted(candidates):
        wait = max(1, math.ceil(max(moment, now) - now - EPSILON))
        for extra in (0, 1):  # the float formula may be a hair short at the exact second
            if admitted_at(now + wait + extra):
                return wait + extra
    return max(1, math.ceil(start + 120.0 - now))


def storage_key(scope: str, key: str) -> str:
    """``scope:key``; a long key or one with control characters (PostgreSQL text refuses NUL)
    is replaced by its SHA-256."""
    if len(key) <= MAX_KEY_CHARS and key.isprintable():
        return f"{scope}:{key}"
    return f"{scope}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


class RateLimiter:
    """``check(key)`` raises ``RateLimited`` (with ``retry_after_s``) when ``key`` has used its
    ``per_minute`` requests; 0 = unlimited. ``scope`` keeps limiters apart in a shared store."""

    def __init__(self, per_minute: int, *, counter: Counter | None = None, scope: str = "api",
                 clock: Callable[[], float] | None = None) -> None:
        self.per_minute = per_minute
        self.counter: Counter = counter if counter is not None else MemoryCounter()
        self.scope = scope
        self._clock = clock or time.time
        self._warn_lock = threading.Lock()
        self._warned_at: float | None = None
        self._unchecked = 0

    @property
    def blocking(self) -> bool:
        """Whether ``check`` does I/O (database, Redis): async callers use ``acheck``."""
        return self.per_minute > 0 and self.counter.blocking

    def check(self, key: str) -> None:
        """Count one request for ``key`` or raise ``RateLimited``; fails open on an outage."""
        if self.per_minute <= 0:
            return
        now = self._clock()
        minute = int(now // 60)
        weight = 1.0 - (now - minute * 60.0) / 60.0
        try:
            hit = self.counter.hit(storage_key(self.scope, key), minute, weight, self.per_minute)
        except self.counter.outage_errors as exc:
            self._outage(exc)
            return
        if not hit.admitted:
            retry = retry_after(now, hit.previous, hit.current, self.per_minute)
            raise RateLimited(
                f"rate limit of {self.per_minute} requests per minute reached; retry in {retry} s",
                retry_after_s=retry)

    async def acheck(self, key: str) -> None:
        """``check`` without blocking the event loop (in a worker thread when it does I/O)."""
        if self.blocking:
            await anyio.to_thread.run_sync(self.check, key)
        else:
            self.check(key)

    def _outage(self, exc: BaseException) -> None:
        with self._warn_lock:
            self._unchecked += 1
            now = time.monotonic()
            if self._warned_at is not None and now - self._warned_at < WARN_EVERY_S:
                return
            self._warned_at, unchecked, self._unchecked = now, self._unchecked, 0
        reason = (str(exc).splitlines() or [""])[0][:200]
        log.warning("rate limit %r not checked, request let through: %s is unavailable (%s: %s); "
                    "%d request(s) unchecked since the last warning", self.scope,
                    self.counter.store, type(exc).__name__, reason, unchecked)


def make_limiter(per_minute: int, *, db: Database | None, redis_url: str | None = None,
                 scope: str, clock: Callable[[], float] | None = None) -> RateLimiter:
    """The limiter for ``scope`` ("api", "quota-key", ...): counted in Redis when ``redis_url``
    is set, else in ``db``'s ``rate_counts`` table, else in memory (no database given)."""
    counter: Counter
    if per_minute <= 0:
        counter = MemoryCounter()  # never consulted
    elif redis_url:
        from assistant.security.rate_counters import RedisCounter, shared_redis

        counter = RedisCounter(shared_redis(redis_url))
    elif db is not None:
        from assistant.security.rate_counters import DatabaseCounter

        if db.engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError(f"rate limits are counted in SQLite or PostgreSQL, not "
                              f"{db.engine.dialect.name}: set redis_url, or set the limits to 0")
        counter = DatabaseCounter(db.engine)
    else:
        counter = MemoryCounter()
    return RateLimiter(per_minute, counter=counter, scope=scope, clock=clock)
