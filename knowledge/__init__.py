"""The knowledge library: embedders, loaders, splitting, FAISS index and docstore.

It imports nothing from ``assistant``, ``tools`` or ``ui``; the ``knowledge_search`` plugin
glues it to the product (settings, tenants, the tool and the ``kb`` commands).
"""

from knowledge.base import CheckResult, FileOutcome, Hit, IngestReport, KBConfig, KnowledgeBase
from knowledge.errors import (
    CollectionNotFound,
    DocumentNotFound,
    EmbedderMismatch,
    IndexCorrupt,
    KnowledgeError,
    UnreadableDocument,
)

__all__ = [
    "CheckResult",
    "CollectionNotFound",
    "DocumentNotFound",
    "EmbedderMismatch",
    "FileOutcome",
    "Hit",
    "IndexCorrupt",
    "IngestReport",
    "KBConfig",
    "KnowledgeBase",
    "KnowledgeError",
    "UnreadableDocument",
]
