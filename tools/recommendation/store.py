"""Tables for the catalog and learners' events, per tenant, in the core's database.

They are declared on the core's ``Base`` (same database, same migrations story) and created on
first use with ``create_all`` limited to these two tables. The ``leases`` table
(``knowledge.leases``, which the scheduled retrain takes so that one replica retrains) is
created there too when missing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from assistant.config import Settings, get_settings
from assistant.storage import Database, shared_database
from assistant.storage.models import Base
from knowledge.leases import LeaseRow

EVENT_KINDS = ("view", "complete", "like", "rating", "quiz")
LEVELS = ("beginner", "intermediate", "advanced")


def _now() -> datetime:
    return datetime.now(UTC)


class CatalogItem(Base):
    __tablename__ = "rec_items"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    title_zh: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    description_zh: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(100), index=True)
    level: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10), default="multi")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    prerequisites: Mapped[list[str]] = mapped_column(JSON, default=list)
    duration_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "title_zh": self.title_zh,
                "description": self.description, "description_zh": self.description_zh,
                "subject": self.subject, "level": self.level, "language": self.language,
                "tags": list(self.tags or []), "prerequisites": list(self.prerequisites or []),
                "duration_min": self.duration_min}


class Event(Base):
    __tablename__ = "rec_events"
    __table_args__ = (
        UniqueConstraint("tenant", "user", "resource", "kind", "ts_ms", name="uq_rec_event"),
        Index("ix_rec_events_tenant_user", "tenant", "user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)


_READY: set[str] = set()


def database(settings: Settings | None = None) -> Database:
    """The shared database with this plugin's tables created (once per URL per process)."""
    settings = settings or get_settings()
    db = shared_database(settings.db_url, auto_upgrade=settings.database_auto_upgrade)
    if settings.db_url not in _READY:
        ours = [cast(Table, CatalogItem.__table__), cast(Table, Event.__table__)]
        leases = cast(Table, LeaseRow.__table__)
        try:
            Base.metadata.create_all(db.engine, tables=ours)
            LeaseRow.metadata.create_all(db.engine, tables=[leases])
        except DBAPIError:  # another replica created one of them between the check and ours
            missing = [t.name for t in (*ours, leases) if not inspect(db.engine).has_table(t.name)]
            if missing:
                raise
        _READY.add(settings.db_url)
    return db
