"""Usage metering: every completed turn (an agent observer) and every direct tool call
writes one ``usage`` row, and so does every LTI launch; reports group them by tenant, user,
tool or course.

The key a turn was made with is not part of the agent's ``TurnRecord``: the HTTP layer puts it
in ``current_key`` (a context variable, copied into the worker thread running the agent).
A turn is recorded once, after it completed and was stored; a refused or failed turn is not.
"""

from __future__ import annotations

import csv
import io
import logging
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Table, func, insert, select

from assistant.agent import TurnRecord
from assistant.errors import InvalidInput
from assistant.storage import Database
from assistant.storage.models import new_id
from assistant.storage.usage import UsageRecord

log = logging.getLogger(__name__)

current_key: ContextVar[str] = ContextVar("mentorly_usage_key", default="")
current_surface: ContextVar[str] = ContextVar("mentorly_usage_surface", default="other")  # UI, /v1
# an LTI course's collection, else ""
current_course: ContextVar[str] = ContextVar("mentorly_usage_course", default="")

GroupBy = Literal["tenant", "user", "tool", "course"]
GROUPS: tuple[str, ...] = ("tenant", "user", "tool", "course")
NO_TOOL = "(none)"
_USAGE_TABLE = UsageRecord.__table__
assert isinstance(_USAGE_TABLE, Table)  # a declarative model's table (typed as any FromClause)
_INSERT = insert(_USAGE_TABLE)


def estimate_embedded_tokens(chars: int) -> int:
    """Tokens the router/search embedder saw: about 3 characters a token (EN and ZH mixed)."""
    return 0 if chars <= 0 else max(1, round(chars / 3))


@dataclass
class UsageRow:
    group: str
    turns: int
    prompt_tokens: int
    completion_tokens: int
    tool_calls: int
    image_megapixels: float
    embedded_tokens: int
    compute_ms: float
    launches: int = 0


CSV_FIELDS = ("group", "turns", "prompt_tokens", "completion_tokens", "tool_calls",
              "image_megapixels", "embedded_tokens", "compute_ms", "launches")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it says otherwise); ``None`` stays ``None``."""
    if value is None or not value.strip():
        return None
    try:
        return _utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise InvalidInput(f"{name}={value!r} is not an ISO date or date-time (e.g. 2026-11-01)") from None


class Meter:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- recording ------------------------------------------------------------------

    def observe(self, record: TurnRecord) -> None:
        """The agent observer: one row for one completed turn."""
        self.record(tenant=record.tenant, user=record.user, key=current_key.get(),
                    tool=record.tools[0] if record.tools else "", surface=current_surface.get(),
                    turns=1, prompt_tokens=record.prompt_tokens,
                    completion_tokens=record.completion_tokens, tool_calls=len(record.tools),
                    image_megapixels=record.image_pixels / 1e6,
                    embedded_tokens=estimate_embedded_tokens(record.message_chars),
                    compute_ms=record.compute_ms, course=current_course.get())

    def record(self, *, tenant: str, user: str, key: str = "", tool: str = "", surface: str = "api",
               turns: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0, tool_calls: int = 0,
               image_megapixels: float = 0.0, embedded_tokens: int = 0, compute_ms: float = 0.0,
               course: str = "", launches: int = 0) -> None:
        """One usage row; ``course`` is an LTI course's collection, ``launches`` counts LTI launches."""
        row = {"id": new_id(), "at": datetime.now(UTC), "tenant_id": tenant, "user": user[:200],
               "key": key[:64], "tool": tool[:200], "surface": surface[:16], "turns": turns,
               "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
               "tool_calls": tool_calls, "image_megapixels": round(image_megapixels, 6),
               "embedded_tokens": embedded_tokens, "compute_ms": round(compute_ms, 3),
               "course": course[:100], "launches": launches}
        # A Core insert, not the ORM: this runs on every tool call, where the ORM's unit of work
        # cost more than a cheap tool does.
        with self.db.engine.begin() as conn:
            conn.execute(_INSERT, row)

    # -- reading --------------------------------------------------------------------

    def totals_since(self, since: datetime, *, key: str | None = None, tenant: str | None = None,
                     user: str | None = None) -> tuple[int, int]:
        """(tokens, tool calls) since ``since`` for one key, or one tenant's user."""
        query = select(func.coalesce(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0),
                       func.coalesce(func.sum(UsageRecord.tool_calls), 0)).where(UsageRecord.at >= since)
        if key is not None:
            query = query.where(UsageRecord.key == key)
        if tenant is not None:
            query = query.where(UsageRecord.tenant_id == tenant)
        if user is not None:
            query = query.where(UsageRecord.user == user)
        with self.db.session() as s:
            tokens, calls = s.execute(query).one()
        return int(tokens), int(calls)

    def report(self, *, start: datetime | None = None, end: datetime | None = None,
               group_by: str = "tenant", tenant: str | None = None,
               course: str | None = None) -> list[UsageRow]:
        """Sums per group over ``[start, end)``; ``tenant`` limits it to one tenant, ``course``
        to one LTI course's collection."""
        if group_by not in GROUPS:
            raise InvalidInput(f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")
        if start is not None and end is not None and end <= start:
            raise InvalidInput("'to' must be after 'from'")
        column = {"tenant": UsageRecord.tenant_id, "user": UsageRecord.user,
                  "tool": UsageRecord.tool, "course": UsageRecord.course}[group_by]
        group_key = ((UsageRecord.tenant_id + "/" + UsageRecord.user) if group_by == "user"
                     else column)
        query = select(group_key, func.sum(UsageRecord.turns), func.sum(UsageRecord.prompt_tokens),
                       func.sum(UsageRecord.completion_tokens), func.sum(UsageRecord.tool_calls),
                       func.sum(UsageRecord.image_megapixels), func.sum(UsageRecord.embedded_tokens),
                       func.sum(UsageRecord.compute_ms), func.sum(UsageRecord.launches)
                       ).group_by(group_key).order_by(group_key)
        if start is not None:
            query = query.where(UsageRecord.at >= start)
        if end is not None:
            query = query.where(UsageRecord.at < end)
        if tenant is not None:
            query = query.where(UsageRecord.tenant_id == tenant)
        if course is not None:
            query = query.where(UsageRecord.course == course)
        with self.db.session() as s:
            rows = s.execute(query).all()
        return [UsageRow(group=(g or NO_TOOL) if group_by == "tool" else g, turns=int(t or 0),
                         prompt_tokens=int(p or 0), completion_tokens=int(c or 0),
                         tool_calls=int(k or 0), image_megapixels=round(float(m or 0), 6),
                         embedded_tokens=int(e or 0), compute_ms=round(float(ms or 0), 1),
                         launches=int(n or 0))
                for g, t, p, c, k, m, e, ms, n in rows]


def to_csv(rows: list[UsageRow], group_by: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([group_by, *CSV_FIELDS[1:]])
    for row in rows:
        writer.writerow(list(asdict(row).values()))
    return buf.getvalue()
