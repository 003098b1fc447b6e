"""Quotas and rate limits per key and per user, checked before any model runs.

Requests per minute are sliding windows counted in the database's ``rate_counts`` table, or in
Redis when ``redis_url`` is set (``assistant.security.ratelimit``); tokens and tool calls per day
are summed from the usage table since UTC midnight. Both are shared by every replica and
survive restarts. A refusal is a ``QuotaExceeded`` (429) with ``Retry-After`` and the reset time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from assistant.config import QuotaSettings
from assistant.errors import RateLimited
from assistant.metering import Meter
from assistant.security.ratelimit import make_limiter


class QuotaExceeded(RateLimited):
    """429 with the moment the limit resets (``reset_at``, UTC)."""

    def __init__(self, message: str, reset_at: datetime) -> None:
        retry = max(1, math.ceil((reset_at - datetime.now(UTC)).total_seconds()))
        super().__init__(message, retry_after_s=retry)
        self.reset_at = reset_at


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class Quotas:
    """``redis_url``: count requests per minute in Redis (``Settings.redis_url``) instead of the
    meter's database; ``clock`` (epoch seconds) is for tests."""

    def __init__(self, settings: QuotaSettings, meter: Meter, *, redis_url: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.meter = meter
        self._key_rpm = make_limiter(settings.requests_per_minute_per_key, db=meter.db,
                                     redis_url=redis_url, scope="quota-key", clock=clock)
        self._user_rpm = make_limiter(settings.requests_per_minute_per_user, db=meter.db,
                                      redis_url=redis_url, scope="quota-user", clock=clock)

    @property
    def daily_limits(self) -> bool:
        q = self.settings
        return bool(q.tokens_per_day_per_key or q.tokens_per_day_per_user
                    or q.tool_calls_per_day_per_key or q.tool_calls_per_day_per_user)

    @property
    def needs_database(self) -> bool:
        """Whether ``check`` does I/O (the usage table, the per-minute counts in the database
        or Redis), so async callers run it in a worker thread; False when no limit is set."""
        return self.daily_limits or self._key_rpm.blocking or self._user_rpm.blocking

    def check(self, *, tenant: str, user: str, key: str) -> None:
        """Raise ``QuotaExceeded`` if this request must not run. Counts one request."""
        q = self.settings
        now = datetime.now(UTC)
        # a user is (tenant, user): the same id in another tenant is someone else
        for limiter, ident, who in ((self._key_rpm, key, "this key"),
                                    (self._user_rpm, json.dumps([tenant, user]), "this user")):
            if not ident:
                continue
            try:
                limiter.check(ident)
            except RateLimited as exc:
                raise QuotaExceeded(f"{who} sent more than {limiter.per_minute} requests in a minute; "
                                    f"retry in {exc.retry_after_s} s",
                                    now + timedelta(seconds=exc.retry_after_s)) from None
        if not self.daily_limits:
            return
        day = _day_start(now)
        reset = day + timedelta(days=1)
        checks: list[tuple[str, tuple[int, int], int, int]] = []
        if key and (q.tokens_per_day_per_key or q.tool_calls_per_day_per_key):
            checks.append(("this key", self.meter.totals_since(day, key=key),
                           q.tokens_per_day_per_key, q.tool_calls_per_day_per_key))
        if q.tokens_per_day_per_user or q.tool_calls_per_day_per_user:
            checks.append(("this user", self.meter.totals_since(day, tenant=tenant, user=user),
                           q.tokens_per_day_per_user, q.tool_calls_per_day_per_user))
        for who, (tokens, calls), token_limit, call_limit in checks:
            if token_limit and tokens >= token_limit:
                raise QuotaExceeded(f"{who} has used its {token_limit:,} tokens for today "
                                    f"(resets at {reset:%H:%M} UTC)", reset)
            if call_limit and calls >= call_limit:
                raise QuotaExceeded(f"{who} has used its {call_limit:,} tool calls for today "
                                    f"(resets at {reset:%H:%M} UTC)", reset)
