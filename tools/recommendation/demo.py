"""The bilingual demo catalog (100 resources written for the project, ``data/demo_catalog.csv``)
and simulated learners who follow prerequisite paths through a few related subjects.

Loaded once per tenant by ``mentorly models prepare`` (``make serve``); deterministic (seeded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .catalog import ImportReport, import_file, load_catalog
from .events import EventReport, count_events, record_events
from .store import CatalogItem

DEMO_CATALOG = Path(__file__).parent / "data" / "demo_catalog.csv"
N_LEARNERS = 160
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY_MS = 86_400_000

# Learners' interests come in clusters of related subjects.
CLUSTERS: list[tuple[tuple[str, ...], float]] = [
    (("mathematics", "physics", "chemistry"), 0.2),
    (("computer science", "data science", "mathematics"), 0.25),
    (("biology", "chemistry"), 0.15),
    (("english", "chinese"), 0.2),
    (("history", "economics", "chinese"), 0.2),
]


def simulate_learners(catalog: list[CatalogItem], n: int = N_LEARNERS, seed: int = 2024
                      ) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    ids = [c.id for c in catalog]
    by_id = {c.id: c for c in catalog}
    appeal = dict(zip(ids, rng.gamma(2.0, 1.0, len(ids)), strict=True))  # some items are better
    level_rank = {"beginner": 0, "intermediate": 1, "advanced": 2}
    subjects = sorted({c.subject for c in catalog})
    events: list[dict[str, Any]] = []
    for k in range(n):
        user = f"learner-{k + 1:03d}"
        cluster = CLUSTERS[rng.choice(len(CLUSTERS), p=[w for _, w in CLUSTERS])][0]
        likes = {s: 1.0 for s in cluster if s in subjects}
        likes[str(rng.choice(subjects))] = likes.get("", 0.3) or 0.3
        diligence = float(rng.uniform(0.5, 0.95))
        completed: set[str] = set()
        t = START_MS + int(rng.integers(0, 30)) * DAY_MS
        for _step in range(int(rng.integers(4, 22))):
            open_items = [i for i in ids if i not in completed and by_id[i].subject in likes
                          and all(p in completed for p in by_id[i].prerequisites or [])]
            if not open_items:
                break
            w = np.array([likes[by_id[i].subject] * appeal[i] / (1 + level_rank[by_id[i].level])
                          for i in open_items])
            item = open_items[int(rng.choice(len(open_items), p=w / w.sum()))]
            t += int(rng.integers(1, 4)) * DAY_MS + int(rng.integers(0, DAY_MS))
            events.append({"user": user, "resource": item, "kind": "view", "timestamp": t})
            if rng.random() > diligence:
                continue  # looked, did not finish
            t += int(rng.integers(1, 3)) * DAY_MS
            completed.add(item)
            events.append({"user": user, "resource": item, "kind": "complete", "timestamp": t})
            if rng.random() < 0.35:
                events.append({"user": user, "resource": item, "kind": "quiz", "timestamp": t + 1,
                               "value": float(np.clip(rng.normal(60 + 8 * appeal[item], 12), 0, 100))})
            if rng.random() < 0.4:
                stars = float(np.clip(round(rng.normal(3.2 + 0.5 * appeal[item], 0.8)), 1, 5))
                events.append({"user": user, "resource": item, "kind": "rating", "timestamp": t + 2,
                               "value": stars})
            if appeal[item] > 2.5 and rng.random() < 0.5:
                events.append({"user": user, "resource": item, "kind": "like", "timestamp": t + 3})
    return events


def load_demo(tenant: str, settings: Any = None) -> tuple[ImportReport | None, EventReport | None]:
    """Import the demo catalog and learners unless the tenant already has a catalog."""
    if load_catalog(tenant, settings):
        return None, None
    report = import_file(DEMO_CATALOG, tenant=tenant, settings=settings)
    events = simulate_learners(load_catalog(tenant, settings))
    event_report = record_events(events, tenant=tenant, settings=settings) \
        if count_events(tenant, settings) == 0 else None
    return report, event_report
