"""Per-minute rate limits counted where every replica sees them (issue #16): the database's
``rate_counts`` table (SQLite and PostgreSQL) or Redis. Each "replica" is its own limiter over its
own ``Database`` (engine, pool) or Redis client, on the same database or server."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from assistant.config import QuotaSettings
from assistant.errors import RateLimited
from assistant.metering import Meter
from assistant.quotas import QuotaExceeded, Quotas
from assistant.security import RateLimiter, make_limiter
from assistant.security.rate_counters import DatabaseCounter, MemoryCounter, RedisCounter
from assistant.security.ratelimit import retry_after, storage_key
from assistant.storage import Database
from assistant.storage.rate_counts import RateCount
from mentorly_app.web import create_app
from tests.support.live_api import make_runtime
from tests.support.redis_server import RedisServer

MINUTE = 29_000_000  # an epoch minute (2025); the tests set the clock inside it


class Clock:
    """Epoch seconds the test sets."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = RedisServer.find_bin()
    if binary is None:
        pytest.skip("redis-server is not installed (make test installs Debian's redis-server package)")
    server = RedisServer(binary).start()
    yield server
    server.close()


Replicas = Callable[..., tuple[RateLimiter, RateLimiter]]


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replicas]:
    """``replicas(per_minute, clock)``: two limiters of one scope as two replicas would build
    them: on two ``Database`` objects (two engines) over one database, or on two Redis clients."""
    opened: list[Any] = []
    scope = f"t{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url

        def build(per_minute: int, clock: Clock) -> tuple[RateLimiter, RateLimiter]:
            first = make_limiter(per_minute, db=None, redis_url=url, scope=scope, clock=clock)
            client = redis.Redis.from_url(url)
            opened.append(client)
            second = RateLimiter(per_minute, counter=RedisCounter(client), scope=scope, clock=clock)
            assert isinstance(first.counter, RedisCounter)
            return first, second
    else:
        url = (f"sqlite:///{tmp_path / 'shared.db'}" if request.param == "sqlite"
               else str(request.getfixturevalue("pg_server").create_database()))

        def build(per_minute: int, clock: Clock) -> tuple[RateLimiter, RateLimiter]:
            dbs = [Database(url), Database(url)]
            opened.extend(dbs)
            pair = tuple(make_limiter(per_minute, db=db, scope=scope, clock=clock) for db in dbs)
            assert all(isinstance(limiter.counter, DatabaseCounter) for limiter in pair)
            return pair[0], pair[1]

    yield build
    for thing in opened:
        thing.engine.dispose() if isinstance(thing, Database) else thing.close()


def refused(limiter: RateLimiter, key: str) -> int:
    """The retry_after_s of a refusal (fails the test if the request is admitted)."""
    with pytest.raises(RateLimited, match="10 requests per minute|20 requests per minute") as caught:
        limiter.check(key)
    return caught.value.retry_after_s


def test_two_replicas_share_one_limit(replicas: Replicas) -> None:
    clock = Clock(MINUTE * 60 + 10)
    a, b = replicas(10, clock)
    for _ in range(5):
        a.check("key-1")
        b.check("key-1")
    retry = refused(a, "key-1")
    assert refused(b, "key-1") == retry
    # 10 in this minute: the next minute admits once 10 * (1 - f) + 1 <= 10, at f = 0.1 (6 s)
    assert retry == 50 + 6
    b.check("key-2")  # another key has its own count
    clock.t += retry - 1
    refused(a, "key-1")
    clock.t += 1
    b.check("key-1")  # exactly when Retry-After said, on the other replica


def test_the_window_slides_across_a_minute_boundary(replicas: Replicas) -> None:
    clock = Clock(MINUTE * 60 + 50)
    a, b = replicas(10, clock)
    for i in range(10):
        (a if i % 2 else b).check("burst")
    clock.t = (MINUTE + 1) * 60 + 1  # a new minute, 11 s after the burst: a fixed window would admit
    assert refused(b, "burst") == 5  # 10 * (1 - 6/60) + 1 = 10 fits at 6 s past the minute
    clock.t += 4
    refused(a, "burst")
    clock.t += 1
    a.check("burst")
    refused(b, "burst")


def _stored_count(limiter: RateLimiter, key: str, minute: int) -> int:
    counter = limiter.counter
    if isinstance(counter, DatabaseCounter):
        with counter.engine.connect() as conn:
            return int(conn.execute(select(RateCount.count).where(
                RateCount.key == storage_key(limiter.scope, key), RateCount.minute == minute)).scalar_one())
    assert isinstance(counter, RedisCounter)
    client = counter._script.registered_client
    return int(client.get(f"mentorly:rate:{{{storage_key(limiter.scope, key)}}}:{minute}"))


def test_concurrent_hits_admit_exactly_the_limit(replicas: Replicas) -> None:
    clock = Clock(MINUTE * 60 + 30)
    a, b = replicas(20, clock)
    admitted: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def hammer(limiter: RateLimiter) -> None:
        start.wait()
        for _ in range(10):
            try:
                limiter.check("busy")
                admitted.append(1)
            except RateLimited:
                pass
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(limiter,)) for limiter in (a, a, b, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(admitted) == 20
    assert _stored_count(a, "busy", MINUTE) == 20  # the 20 refused hits were taken back out


def test_scopes_keep_limits_apart(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'scopes.db'}")
    clock = Clock(MINUTE * 60)
    api = make_limiter(1, db=db, scope="api", clock=clock)
    quota = make_limiter(1, db=db, scope="quota-key", clock=clock)
    api.check("same-name")
    quota.check("same-name")
    with pytest.raises(RateLimited):
        api.check("same-name")
    with db.engine.connect() as conn:
        keys = sorted(conn.execute(select(RateCount.key)).scalars())
    assert keys == ["api:same-name", "quota-key:same-name"]
    long = "x" * 400 + "\x00"  # too long for the column, and NUL is not text in PostgreSQL
    assert storage_key("api", long).startswith("api:sha256:") and len(storage_key("api", long)) < 300


def test_rows_older_than_the_previous_minute_are_deleted(db_url: str) -> None:
    db = Database(db_url)
    clock = Clock(MINUTE * 60)
    limiter = make_limiter(5, db=db, scope="prune", clock=clock)
    for offset in (0, 1, 2, 4):
        clock.t = (MINUTE + offset) * 60 + 1
        limiter.check("k")
        limiter.check("other")
    with db.engine.connect() as conn:
        minutes = sorted(set(conn.execute(select(RateCount.minute)).scalars()))
    # at minute +4 the rows of +0..+2 go (the clean-up runs once per minute, not per request)
    assert minutes == [MINUTE + 4]
    db.engine.dispose()


def test_a_refused_request_is_not_counted(db_url: str) -> None:
    db = Database(db_url)
    clock = Clock(MINUTE * 60 + 30)
    limiter = make_limiter(2, db=db, scope="undo", clock=clock)
    limiter.check("k")
    limiter.check("k")
    for _ in range(5):
        with pytest.raises(RateLimited):
            limiter.check("k")
    assert _stored_count(limiter, "k", MINUTE) == 2
    db.engine.dispose()


@pytest.mark.parametrize(("previous", "current", "limit", "elapsed"),
                         [(0, 2, 2, 10.0), (0, 1, 1, 0.0), (10, 0, 10, 1.0), (7, 3, 10, 59.5),
                          (3, 10, 10, 30.2), (100, 50, 100, 0.0)])
def test_retry_after_is_the_first_second_that_admits(previous: int, current: int, limit: int,
                                                     elapsed: float) -> None:
    """Against the memory counter, second by second: refused until exactly ``retry_after``."""
    now = MINUTE * 60 + elapsed
    retry = retry_after(now, previous, current, limit)
    for wait in range(1, retry + 1):
        counter = MemoryCounter()
        counter._counts = {("k", MINUTE - 1): previous, ("k", MINUTE): current}
        counter._pruned = MINUTE
        t = now + wait
        minute = int(t // 60)
        assert counter.hit("k", minute, 1 - (t - minute * 60) / 60, limit).admitted is (wait == retry), wait
    assert 1 <= retry <= 120


# -- outages: fail open ---------------------------------------------------------------------------


def test_a_database_outage_lets_requests_through_with_a_warning(db_url: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    db = Database(db_url)
    limiter = make_limiter(1, db=db, scope="outage", clock=Clock(MINUTE * 60))
    limiter.check("k")
    with pytest.raises(RateLimited):
        limiter.check("k")
    if db.engine.dialect.name == "postgresql":  # the database goes away under the pool
        url = make_url(db_url)
        with psycopg.connect(f"postgresql://postgres@{url.host}:{url.port}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
    else:
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE rate_counts"))
    with caplog.at_level(logging.WARNING, logger="assistant.security.ratelimit"):
        limiter.check("k")  # no exception: let through
        limiter.check("k")
    warnings = [r for r in caplog.records if "not checked, request let through" in r.getMessage()]
    assert len(warnings) == 1 and "the database is unavailable" in warnings[0].getMessage()  # one a minute
    db.engine.dispose()


def test_a_redis_outage_lets_requests_through_with_a_warning(redis_server: RedisServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    own = RedisServer(redis_server.binary).start()  # one to stop: the session's stays up
    try:
        limiter = make_limiter(1, db=None, redis_url=own.url, scope="outage", clock=Clock(MINUTE * 60))
        limiter.check("k")
        with pytest.raises(RateLimited):
            limiter.check("k")
        own.stop()
        with caplog.at_level(logging.WARNING, logger="assistant.security.ratelimit"):
            limiter.check("k")
        assert any("Redis is unavailable" in r.getMessage() for r in caplog.records)
    finally:
        own.close()


# -- where the app builds its limiters ------------------------------------------------------------


def test_quotas_per_user_are_shared_by_replicas(db_url: str) -> None:
    clock = Clock(MINUTE * 60 + 5)
    settings = QuotaSettings(requests_per_minute_per_user=3)
    first = Quotas(settings, Meter(Database(db_url)), clock=clock)
    second = Quotas(settings, Meter(Database(db_url)), clock=clock)
    assert first.needs_database  # the counts are I/O now: async callers use a worker thread
    first.check(tenant="a", user="ann", key="k1")
    second.check(tenant="a", user="ann", key="k2")
    first.check(tenant="b", user="ann", key="k1")  # another tenant's ann
    second.check(tenant="a", user="ann", key="k3")
    with pytest.raises(QuotaExceeded, match="this user"):
        first.check(tenant="a", user="ann", key="k4")
    with first.meter.db.engine.connect() as conn:
        keys = set(conn.execute(select(RateCount.key)).scalars())
    assert f"quota-user:{json.dumps(['a', 'ann'])}" in keys


def test_quotas_count_in_redis_when_configured(redis_server: RedisServer, tmp_path: Path) -> None:
    clock = Clock(MINUTE * 60 + 5)
    settings = QuotaSettings(requests_per_minute_per_key=1)
    meter = Meter(Database(f"sqlite:///{tmp_path / 'q.db'}"))
    user = uuid.uuid4().hex
    first = Quotas(settings, meter, redis_url=redis_server.url, clock=clock)
    second = Quotas(settings, meter, redis_url=redis_server.url, clock=clock)
    first.check(tenant="a", user=user, key=user)
    with pytest.raises(QuotaExceeded, match="this key"):
        second.check(tenant="a", user=user, key=user)
    with meter.db.engine.connect() as conn:
        assert conn.execute(select(RateCount.key)).first() is None  # nothing in the database


def test_two_apps_on_one_database_share_the_api_limit(db_url: str, tmp_path: Path) -> None:
    apps = [create_app(make_runtime(tmp_path / name, database_url=db_url, api={"rate_limit_per_minute": 3}),
                       with_ui=False) for name in ("one", "two")]
    key, _ = apps[0].state.keys.create("acme", "tools")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        assert one.get("/api/tools", headers=auth).status_code == 200
        assert two.get("/api/tools", headers=auth).status_code == 200
        assert one.get("/api/tools", headers=auth).status_code == 200
        r = two.get("/api/tools", headers=auth)
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 120
