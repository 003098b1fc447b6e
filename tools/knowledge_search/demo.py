"""The demo collection: the bilingual CS101 handbook, loaded for the default tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .service import knowledge_base, product_errors
from .settings import knowledge_settings

DEMO_DIR = Path(__file__).resolve().parent / "demo"


def load_demo(settings: Any, progress: bool = False) -> str:
    """Ingest the handbook (unchanged files are skipped, so this is cheap after the first run)."""
    ks = knowledge_settings(settings)
    if not ks.load_demo:
        return "knowledge base: demo collection disabled (MENTORLY_KNOWLEDGE__LOAD_DEMO=false)"
    kb = knowledge_base(settings)
    with product_errors():
        report = kb.ingest([DEMO_DIR], settings.default_tenant, ks.demo_collection, progress=progress)
    counts = report.to_dict()["counts"]
    failed = [f"{f.source}: {f.reason}" for f in report.files if f.action == "failed"]
    status = (f"knowledge base: demo collection {ks.demo_collection!r} ready for tenant "
              f"{settings.default_tenant!r} ({counts['added']} added, {counts['replaced']} replaced, "
              f"{counts['skipped']} unchanged)")
    return status + (f"; failed: {'; '.join(failed)}" if failed else "")
