"""Scheduled retraining, without a scheduler process.

New events change recommendations at once (scores are ``history @ B``), but ``B``, popularity
and the chosen settings only learn from them at a full retrain. When a recommendation is asked
for and the tenant's model is older than ``retrain_every_hours`` with events recorded since,
a background thread retrains it; the request itself is answered with the current model, and
the next one after the retrain uses the new file. One retrain per tenant runs at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from assistant.config import Settings

from .events import count_events
from .model import RecModel, train_model

log = logging.getLogger(__name__)

_RUNNING: dict[tuple[str, str], threading.Thread] = {}
_LOCK = threading.Lock()
_CHECKED: dict[tuple[str, str], float] = {}
CHECK_EVERY_S = 300.0
"""Once a model is old, its tenant's events are counted at most this often (never more often
than the retrain interval), not on every request."""


def model_age_hours(model: RecModel, now: float | None = None) -> float:
    """Hours since the model was trained (infinite when the file does not say)."""
    stamp = model.meta.get("trained_at")
    try:
        trained = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return ((now if now is not None else time.time()) - trained.timestamp()) / 3600.0


def retrain_due(model: RecModel, settings: Settings, tenant: str, every_hours: float) -> bool:
    """Old enough, and the tenant's event count differs from the one the model was trained on."""
    if every_hours <= 0 or model_age_hours(model) < every_hours:
        return False
    key, now = (str(settings.home), tenant), time.monotonic()
    with _LOCK:
        if now - _CHECKED.get(key, -float("inf")) < min(CHECK_EVERY_S, every_hours * 3600.0):
            return False
        _CHECKED[key] = now
    return count_events(tenant, settings) != model.meta.get("events_total")


def retrain_in_background(settings: Settings, tenant: str) -> threading.Thread | None:
    """Start a retrain of ``tenant`` unless one is already running; the thread, or None."""
    key = (str(settings.home), tenant)
    with _LOCK:
        running = _RUNNING.get(key)
        if running is not None and running.is_alive():
            return None
        thread = threading.Thread(target=_retrain, args=(settings, tenant, key), daemon=True,
                                  name=f"rec-retrain-{tenant}")
        _RUNNING[key] = thread
        thread.start()
        return thread


def _retrain(settings: Settings, tenant: str, key: tuple[str, str]) -> None:
    try:
        model = train_model(tenant, settings)
        log.info("recommendation model for %s retrained on schedule (version %s, %s events)",
                 tenant, model.meta.get("version"), model.meta.get("events_total"))
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
