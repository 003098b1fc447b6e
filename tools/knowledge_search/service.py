"""One ``KnowledgeBase`` per (database, folder, embedder) per process, and the mapping of the
library's errors onto the product's."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    MentorlyError,
    NotFound,
    PayloadTooLarge,
)
from assistant.storage import shared_database
from knowledge import (
    CollectionNotFound,
    DocumentNotFound,
    DocumentTooLarge,
    EmbedderMismatch,
    IndexCorrupt,
    KnowledgeBase,
    KnowledgeError,
)
from knowledge.embedders import EmbedderError, shared_embedder
from knowledge.errors import CollectionBusy
from knowledge.leases import LeaseLost

from .settings import knowledge_settings

_bases: dict[tuple[str, str, str, int, str], KnowledgeBase] = {}
_lock = threading.Lock()


def index_dir(settings: Any) -> Path:
    return Path(settings.home) / "indexes"


def open_bases(settings: Any) -> list[KnowledgeBase]:
    """The knowledge bases this process has opened for these settings' database and index
    folder (none are opened here): what ``/readyz`` checks."""
    db_url, folder = settings.db_url, str(index_dir(settings))
    return [kb for key, kb in list(_bases.items()) if key[0] == db_url and key[1] == folder]


def knowledge_base(settings: Any) -> KnowledgeBase:
    ks = knowledge_settings(settings)
    key = (settings.db_url, str(index_dir(settings)), settings.embedder.name,
           settings.embedder.threads, ks.model_dump_json())
    kb = _bases.get(key)  # built once per key: a search looks it up without the lock
    if kb is not None:
        return kb
    with _lock:
        kb = _bases.get(key)
        if kb is None:
            # the schema check (and upgrade when the settings allow it) every entry point makes:
            # an outdated database is refused with the command that upgrades it
            shared_database(settings.db_url, auto_upgrade=settings.database_auto_upgrade)
            with product_errors():
                embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
                name = ks.secondary_embedder.strip()
                secondary = (shared_embedder(name, settings.embedder.threads)
                             if name and name.lower() != "none" and name != settings.embedder.name
                             else None)
                kb = _bases[key] = KnowledgeBase(settings.db_url, index_dir(settings), embedder,
                                                 ks.kb_config(), secondary=secondary)
        return kb


def to_product_error(exc: Exception) -> MentorlyError:
    if isinstance(exc, CollectionBusy | LeaseLost):
        return Conflict(str(exc))
    if isinstance(exc, CollectionNotFound | DocumentNotFound):
        return NotFound(str(exc))
    if isinstance(exc, EmbedderMismatch | IndexCorrupt | EmbedderError):
        return ConfigError(str(exc))
    if isinstance(exc, DocumentTooLarge):
        return PayloadTooLarge(str(exc))
    return InvalidInput(str(exc))


@contextlib.contextmanager
def product_errors() -> Iterator[None]:
    """Re-raise the library's errors as ``assistant.errors`` classes (clear CLI/API messages)."""
    try:
        yield
    except (KnowledgeError, EmbedderError, LeaseLost) as exc:
        raise to_product_error(exc) from exc
