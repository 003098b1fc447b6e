"""The knowledge library: embedders, loaders, splitting, FAISS index and docstore.

It imports nothing from ``assistant``, ``tools`` or ``ui``; the ``knowledge_search`` plugin
glues it to the product (settings, tenants, the tool and the ``kb`` commands).

Names are imported on first use: ``import knowledge.embedders`` (the router does, on every
CLI start) must not pay for faiss and the loaders.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckResult": "knowledge.maintenance",
    "FileOutcome": "knowledge.ingest",
    "Hit": "knowledge.search",
    "IngestReport": "knowledge.ingest",
    "KBConfig": "knowledge.catalog",
    "KnowledgeBase": "knowledge.base",
    "CollectionNotFound": "knowledge.errors",
    "DocumentNotFound": "knowledge.errors",
    "DocumentTooLarge": "knowledge.errors",
    "EmbedderMismatch": "knowledge.errors",
    "IndexCorrupt": "knowledge.errors",
    "KnowledgeError": "knowledge.errors",
    "UnreadableDocument": "knowledge.errors",
    "UnpackLimits": "knowledge.unpacking",
    "WrongFormat": "knowledge.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'knowledge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
