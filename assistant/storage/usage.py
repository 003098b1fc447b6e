"""The usage table: one row per completed chat turn or direct tool call, per tenant, user,
key and tool. The basis of ``GET /api/usage``, ``mentorly usage`` and the daily quotas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.storage.models import Base, _now, new_id


class UsageRecord(Base):
    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_tenant_at", "tenant_id", "at"), Index("ix_usage_key_at", "key", "at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(200), default="")
    key: Mapped[str] = mapped_column(String(64), default="")  # API key prefix or widget pk_ key
    tool: Mapped[str] = mapped_column(String(200), default="")  # "" = an answer without a tool
    surface: Mapped[str] = mapped_column(String(16), default="api")  # api | widget | lti | tool | other
    course: Mapped[str] = mapped_column(String(100), default="")  # an LTI course's collection, else ""
    turns: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    tool_calls: Mapped[int] = mapped_column(Integer, default=0)
    image_megapixels: Mapped[float] = mapped_column(Float, default=0.0)
    embedded_tokens: Mapped[int] = mapped_column(Integer, default=0)  # an estimate (chars / 3)
    compute_ms: Mapped[float] = mapped_column(Float, default=0.0)
    launches: Mapped[int] = mapped_column(Integer, default=0)  # LTI launches
