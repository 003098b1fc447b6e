"""Per-minute request counts, one row per key and minute, shared by every replica (used by
``assistant.security.ratelimit`` when no Redis URL is set)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.storage.models import Base


class RateCount(Base):
    __tablename__ = "rate_counts"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds // 60
    count: Mapped[int] = mapped_column(Integer, default=0)
