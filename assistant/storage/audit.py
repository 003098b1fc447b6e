"""The audit log table: who did which administrative action, when, to what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.storage.models import Base, _now, new_id


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    actor: Mapped[str] = mapped_column(String(200))  # "cli:<os user>" or "key:<prefix>"
    action: Mapped[str] = mapped_column(String(64), index=True)  # e.g. key.created, document.deleted
    target: Mapped[str] = mapped_column(String(500), default="")
    tenant_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
