"""Scheduled retraining, without a scheduler process, on one replica at a time.

New events change recommendations at once (scores are ``history @ B``), but ``B``, popularity
and the chosen settings only learn from them at a full retrain. When a recommendation is asked
for and the tenant's model is older than ``retrain_every_hours`` with events recorded since,
a background thread retrains it; the request itself is answered with the current model, and
the next one after the retrain uses the new file. One retrain per tenant runs at a time.

Replicas (several ``mentorly serve`` on one database and one shared folder) would all see the
same old model at once; the thread first takes the database lease ``rec-retrain:<tenant>``
(``knowledge.leases``), re-reads the model from the shared folder and checks that it is still
due (another replica may have just finished), trains, checks that the lease is still held,
writes the file atomically and releases the lease. A replica that does not get the lease, or
finds the model fresh, trains nothing and keeps serving the current model.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.orm import sessionmaker

from assistant.config import Settings
from knowledge.leases import HOLDER, Lease, try_acquire

from .events import count_events
from .model import RecModel, load_model, train_model
from .store import database

log = logging.getLogger(__name__)

_RUNNING: dict[tuple[str, str], threading.Thread] = {}
_LOCK = threading.Lock()
_CHECKED: dict[tuple[str, str], float] = {}
CHECK_EVERY_S = 300.0
"""Once a model is old, its tenant's events are counted at most this often (never more often
than the retrain interval), not on every request."""
LEASE_TTL_S = 300.0
"""The retrain lease's time to live; the holder renews it every third of that while it trains,
so only a replica that died (or stalled this long) lets another one take over."""

Outcome = Literal["trained", "busy", "fresh"]


def lease_name(tenant: str) -> str:
    return f"rec-retrain:{tenant}"


def model_age_hours(model: RecModel, now: float | None = None) -> float:
    """Hours since the model was trained (infinite when the file does not say)."""
    stamp = model.meta.get("trained_at")
    try:
        trained = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return ((now if now is not None else time.time()) - trained.timestamp()) / 3600.0


def is_due(model: RecModel, settings: Settings, tenant: str, every_hours: float) -> bool:
    """Old enough, and the tenant's event count differs from the one the model was trained on
    (no throttle: one count query)."""
    if every_hours <= 0 or model_age_hours(model) < every_hours:
        return False
    return count_events(tenant, settings) != model.meta.get("events_total")


def retrain_due(model: RecModel, settings: Settings, tenant: str, every_hours: float) -> bool:
    """``is_due``, with the events counted at most every ``CHECK_EVERY_S`` per tenant."""
    if every_hours <= 0 or model_age_hours(model) < every_hours:
        return False
    key, now = (str(settings.home), tenant), time.monotonic()
    with _LOCK:
        if now - _CHECKED.get(key, -float("inf")) < min(CHECK_EVERY_S, every_hours * 3600.0):
            return False
        _CHECKED[key] = now
    return is_due(model, settings, tenant, every_hours)


def retrain_in_background(settings: Settings, tenant: str,
                          every_hours: float | None = None) -> threading.Thread | None:
    """Start a retrain of ``tenant`` unless one is already running in this process; the
    thread, or None. ``every_hours`` (default: the ``[recommendation]`` setting) is what the
    thread re-checks once it holds the lease."""
    if every_hours is None:
        from .settings import recommendation_settings

        every_hours = recommendation_settings().retrain_every_hours
    key = (str(settings.home), tenant)
    with _LOCK:
        running = _RUNNING.get(key)
        if running is not None and running.is_alive():
            return None
        thread = threading.Thread(target=_retrain, args=(settings, tenant, key, every_hours),
                                  daemon=True, name=f"rec-retrain-{tenant}")
        _RUNNING[key] = thread
        thread.start()
        return thread


def retrain_once(settings: Settings, tenant: str, every_hours: float) -> Outcome:
    """Retrain ``tenant``'s model if this replica gets the lease and the model (re-read from
    the shared folder) is still due: ``"trained"``, ``"busy"`` (another replica holds the
    lease) or ``"fresh"`` (nothing to do any more). Errors propagate."""
    sessions = sessionmaker(database(settings).engine)
    name = lease_name(tenant)
    holder = f"{HOLDER}/{uuid.uuid4().hex[:8]}"  # this attempt: not even a thread here shares it
    if not try_acquire(sessions, name, LEASE_TTL_S, holder):
        log.info("recommendation retrain of %s: another replica holds the lease", tenant)
        return "busy"
    with Lease(sessions, name, LEASE_TTL_S, holder) as lease:  # renewed while training
        current = load_model(settings, tenant)
        if current is not None and not is_due(current, settings, tenant, every_hours):
            log.info("recommendation retrain of %s: the model is up to date (version %s)",
                     tenant, current.version)
            return "fresh"
        model = train_model(tenant, settings, before_save=lease.check)
    log.info("recommendation model for %s retrained on schedule (version %s, %s events)",
             tenant, model.meta.get("version"), model.meta.get("events_total"))
    return "trained"


def _retrain(settings: Settings, tenant: str, key: tuple[str, str], every_hours: float) -> None:
    try:
        retrain_once(settings, tenant, every_hours)
    except Exception:  # a failed background retrain must not take the service down
        log.exception("scheduled retrain of the recommendation model for %s failed", tenant)
    finally:
        with _LOCK:
            if _RUNNING.get(key) is threading.current_thread():
                del _RUNNING[key]


def wait_for_retrains(timeout: float = 60.0) -> bool:
    """Wait until no background retrain runs (tests, and a CLI that is about to exit)."""
    deadline = time.monotonic() + timeout
    while True:
        with _LOCK:
            threads = [t for t in _RUNNING.values() if t.is_alive()]
        if not threads:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        threads[0].join(min(remaining, 1.0))
