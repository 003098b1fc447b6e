"""A per-key sliding-window limit, in memory (one process). 0 means unlimited."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from assistant.errors import RateLimited


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] | None = None) -> None:
        self.per_minute = per_minute
        self._clock = clock or time.monotonic
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry = max(1, math.ceil(60.0 - (now - hits[0])))
                raise RateLimited(
                    f"rate limit of {self.per_minute} requests per minute reached; retry in {retry} s",
                    retry_after_s=retry)
            hits.append(now)
