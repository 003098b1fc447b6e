"""A flood guard for the LTI routes anyone may call: ``/lti/login`` (each login writes a state
row), ``/lti/launch`` and ``/lti/deep-link`` (each refusal writes an audit row).

``[lti] requests_per_minute_per_ip`` requests per client address and minute (0 = no limit),
counted by the project's ``RateLimiter`` (scope ``lti``) where every replica sees the same
numbers: Redis when ``redis_url`` is set, else the database. An IPv6 client counts by its /64
(one host is given a whole /64 and can pick any address in it); an IPv4-mapped IPv6 address
counts as its IPv4 address. Behind a reverse proxy the client address is the proxy's unless
uvicorn trusts its ``X-Forwarded-For`` (it does for a proxy on 127.0.0.1).

A refused request writes nothing but, for the first refusal of an address in a minute (per
process, at most ``MAX_AUDITED_PER_MINUTE`` addresses a minute), one ``lti.launch_refused``
audit row with reason ``rate_limited``; the rest are counted in a log line once a minute. The
flood itself never reaches the audit log, the state table or the launcher.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable

import anyio

from assistant import audit
from assistant.errors import RateLimited
from assistant.security.ratelimit import RateLimiter, make_limiter
from assistant.storage import Database

log = logging.getLogger(__name__)

SCOPE = "lti"
MAX_AUDITED_PER_MINUTE = 100  # distinct addresses audited per minute and process


def client_key(host: str | None) -> str:
    """The address a client is counted by: IPv4 as is, IPv6 by its /64, anything else (a
    test client's name, a Unix socket) as given; ``unknown`` when there is none."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # a zone id (fe80::1%eth0) aside
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FloodGuard:
    """``await guard.admit(host, step)``: ``None`` when the request may go on, else the
    ``RateLimited`` to answer with (its ``retry_after_s`` for ``Retry-After``)."""

    def __init__(self, limiter: RateLimiter, db: Database | None, *,
                 clock: Callable[[], float] | None = None) -> None:
        self.limiter = limiter
        self.db = db
        self._clock = clock or time.time
        self._lock = threading.Lock()
        self._minute = -1
        self._audited: set[str] = set()  # addresses audited in ``_minute``
        self._unaudited = 0  # refusals in ``_minute`` not audited (repeats, over the cap)

    @classmethod
    def build(cls, per_minute: int, *, db: Database, redis_url: str | None = None) -> FloodGuard:
        return cls(make_limiter(per_minute, db=db, redis_url=redis_url, scope=SCOPE), db)

    @property
    def per_minute(self) -> int:
        return self.limiter.per_minute

    async def admit(self, host: str | None, step: str) -> RateLimited | None:
        if self.limiter.per_minute <= 0:
            return None
        key = client_key(host)
        try:
            await self.limiter.acheck(key)
        except RateLimited as exc:
            if self._first_refusal(key):
                await anyio.to_thread.run_sync(self._audit, key, step, exc)
            return exc
        return None

    def _first_refusal(self, key: str) -> bool:
        """Whether this refusal is the address's first of the minute (and under the cap)."""
        minute = int(self._clock() // 60)
        with self._lock:
            if minute != self._minute:
                if self._unaudited:
                    log.warning("LTI flood guard: %d more request(s) refused in the last minute "
                                "(%d address(es) audited)", self._unaudited, len(self._audited))
                self._minute, self._audited, self._unaudited = minute, set(), 0
            if key in self._audited or len(self._audited) >= MAX_AUDITED_PER_MINUTE:
                self._unaudited += 1
                return False
            self._audited.add(key)
            return True

    def _audit(self, key: str, step: str, exc: RateLimited) -> None:
        log.warning("LTI %s refused: %s sent more than %d requests in a minute (retry in %d s); if "
                    "that is your reverse proxy's address, let uvicorn trust its X-Forwarded-For "
                    "(FORWARDED_ALLOW_IPS) or raise [lti] requests_per_minute_per_ip",
                    step, key, self.limiter.per_minute, exc.retry_after_s)
        if self.db is None:
            return
        audit.record(self.db, actor=f"ip:{key}", action=audit.LTI_LAUNCH_REFUSED, target=key,
                     details={"reason": "rate_limited", "step": step, "client": key,
                              "limit_per_minute": self.limiter.per_minute,
                              "retry_after_s": exc.retry_after_s,
                              "message": "too many requests from this address; later refusals "
                                         "from it this minute are not recorded"})


__all__ = ["MAX_AUDITED_PER_MINUTE", "SCOPE", "FloodGuard", "client_key"]
