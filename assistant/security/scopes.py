"""What a key may do. ``admin`` implies every other scope."""

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
