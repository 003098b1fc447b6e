"""Learners' interaction events: validated, de-duplicated and written in one transaction.

An event is ``{user, resource, kind, value?, timestamp?}``. Kinds: ``view``, ``complete``,
``like``, ``rating`` (value 1–5), ``quiz`` (score 0–100). A duplicate is the same
(user, resource, kind, timestamp) as a stored event or an earlier one in the batch: it is
reported and skipped, so re-sending a batch is safe. Events for a resource the tenant's
catalog does not have are rejected with the reason; nothing valid is dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError

from .store import EVENT_KINDS, CatalogItem, Event, database

MAX_BATCH = 100_000


@dataclass
class EventReport:
    accepted: int = 0
    duplicates: list[int] = field(default_factory=list)  # positions in the batch
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": [{"index": i, "reason": why} for i, why in self.rejected]}

    def line(self) -> str:
        return (f"accepted {self.accepted} events, {len(self.duplicates)} duplicates skipped, "
                f"{len(self.rejected)} rejected")


def parse_timestamp(value: Any) -> int:
    """Epoch milliseconds from epoch seconds/milliseconds or an ISO-8601 string; now if empty."""
    if value in (None, ""):
        return int(time.time() * 1000)
    if isinstance(value, bool):
        raise ValueError("timestamp must be a number or an ISO-8601 string")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"timestamp {text!r} is not epoch seconds or ISO-8601") from None
            return _in_range(int(parsed.timestamp() * 1000))
    if not math.isfinite(number) or number < 0:
        raise ValueError("timestamp must be a non-negative finite number")
    return _in_range(int(number if number > 1e11 else number * 1000))  # ms if it already looks like ms


MAX_TIMESTAMP_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: beyond it databases overflow


def _in_range(ms: int) -> int:
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        raise ValueError("timestamp is out of range (years 1970-9999)")
    return ms


def _check(event: Any) -> tuple[str, str, str, float | None, int]:
    if not isinstance(event, dict):
        raise ValueError("an event is an object with user, resource and kind")
    user = str(event.get("user") or "").strip()
    resource = str(event.get("resource") or "").strip()
    kind = str(event.get("kind") or "").strip().lower()
    if not user or len(user) > 200:
        raise ValueError("user is missing or longer than 200 characters")
    if not resource:
        raise ValueError("resource is missing")
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown kind {kind!r} (use {', '.join(EVENT_KINDS)})")
    raw = event.get("value")
    value: float | None = None
    if raw not in (None, ""):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"value {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError("value must be finite")
    if kind == "rating" and (value is None or not 1 <= value <= 5):
        raise ValueError("a rating needs a value from 1 to 5")
    if kind == "quiz" and (value is None or not 0 <= value <= 100):
        raise ValueError("a quiz event needs a score from 0 to 100")
    return user, resource, kind, value, parse_timestamp(event.get("timestamp"))


def record_events(events: Iterable[Any], *, tenant: str, settings: Any = None) -> EventReport:
    """Validate all events, then write the valid, new ones in a single transaction."""
    batch = list(events)
    if len(batch) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} events per batch")
    report = EventReport()
    checked: list[tuple[int, tuple[str, str, str, float | None, int]]] = []
    for i, event in enumerate(batch):
        try:
            checked.append((i, _check(event)))
        except ValueError as exc:
            report.rejected.append((i, str(exc)))
    db = database(settings)
    for attempt in range(3):
        try:
            written = _write(db, tenant, checked)
            break
        except IntegrityError:
            # an identical batch (a client's retry) committed first: read again, the rows it
            # wrote are duplicates now
            if attempt == 2:
                raise
    report.accepted, report.duplicates = written.accepted, written.duplicates
    report.rejected.extend(written.rejected)
    report.rejected.sort()
    return report


def _write(db: Any, tenant: str,
           checked: list[tuple[int, tuple[str, str, str, float | None, int]]]) -> EventReport:
    """Write the new events of ``checked`` in one transaction; what was rejected or already
    stored is reported."""
    report = EventReport()
    with db.session() as s:
        resources = {r for r, in s.execute(select(CatalogItem.id).where(
            CatalogItem.tenant == tenant, CatalogItem.id.in_({c[1] for _, c in checked})))}
        keys = [(u, r, k, ts) for _, (u, r, k, _v, ts) in checked]
        stored: set[tuple[str, str, str, int]] = set()
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            query = select(Event.user, Event.resource, Event.kind, Event.ts_ms).where(
                Event.tenant == tenant,
                tuple_(Event.user, Event.resource, Event.kind, Event.ts_ms).in_(part))
            stored.update(tuple(row) for row in s.execute(query).all())
        for i, (user, resource, kind, value, ts) in checked:
            if resource not in resources:
                report.rejected.append((i, f"unknown resource {resource!r} in tenant {tenant!r}"))
                continue
            key = (user, resource, kind, ts)
            if key in stored:
                report.duplicates.append(i)
                continue
            stored.add(key)
            s.add(Event(tenant=tenant, user=user, resource=resource, kind=kind, value=value,
                        ts_ms=ts))
            report.accepted += 1
    return report


def user_events(tenant: str, user: str, settings: Any = None) -> list[tuple[str, str, float | None, int]]:
    """(resource, kind, value, ts_ms) of one user, oldest first."""
    with database(settings).session() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(Event.resource, Event.kind, Event.value, Event.ts_ms)
            .where(Event.tenant == tenant, Event.user == user).order_by(Event.ts_ms))]


def all_events(tenant: str, settings: Any = None) -> list[tuple[str, str, str, float | None]]:
    """(user, resource, kind, value) of every event of a tenant."""
    with database(settings).session() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(Event.user, Event.resource, Event.kind, Event.value)
            .where(Event.tenant == tenant))]


def count_events(tenant: str, settings: Any = None) -> int:
    from sqlalchemy import func

    with database(settings).session() as s:
        return int(s.scalar(select(func.count()).select_from(Event)
                            .where(Event.tenant == tenant)) or 0)
