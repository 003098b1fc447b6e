"""What a key may do. ``admin`` implies every other scope.

- ``chat``: ask the assistant (``/api/chat``, ``/v1/chat/completions``, ``/v1/models``), upload
  files for it, read the tenant's conversations by id (the catalog, learning events and
  recommendations accept a chat or a tools key). Answering from the organisation's documents
  is the product, so a chat key *does* read the tenant's knowledge, through answers: quotes,
  citations, the ``sources`` event and the knowledge step's passages (the few relevant to the
  question). It cannot list, search, upload or delete documents directly (``/api/knowledge/*``
  needs ``knowledge``) nor call a tool directly (``/api/tools/*`` and ``/mcp`` need ``tools``).
- ``tools``: list and call any registered tool directly, over ``/api/tools`` and ``/mcp``,
  ``knowledge_search`` included, so a tools key also reads the tenant's passages.
- ``knowledge``: manage and search the tenant's document collections (``/api/knowledge``).
- ``admin``: all of the above, plus usage, the audit log, the catalog import and ``/metrics``
  when ``api.metrics = "key"``.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.errors import InvalidInput

CHAT = "chat"
TOOLS = "tools"
KNOWLEDGE = "knowledge"
ADMIN = "admin"
SCOPES: tuple[str, ...] = (CHAT, TOOLS, KNOWLEDGE, ADMIN)


def parse_scopes(value: str | Iterable[str]) -> list[str]:
    """``"chat, tools"`` or ``["chat", "tools"]`` → a sorted, checked list."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = sorted({s.strip().lower() for s in items if s and s.strip()})
    if not scopes:
        raise InvalidInput(f"give at least one scope ({', '.join(SCOPES)})")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return scopes


def allows(granted: Iterable[str], needed: str) -> bool:
    granted = set(granted)
    return needed in granted or ADMIN in granted
