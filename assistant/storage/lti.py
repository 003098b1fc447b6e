"""LTI 1.3 tables: registered platforms, the tool's own signing keys, pending logins (state and
nonce, each used once), courses (a platform's ``context.id`` → a knowledge collection) and the
sessions a verified launch opens (the bearer token the launched page uses instead of a cookie)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from assistant.storage.models import Base, _now, new_id


class LtiPlatform(Base):
    """A platform (Moodle, Canvas…) registered for one tenant: who signs its launches."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000), default="")
    key_set_url: Mapped[str] = mapped_column(String(1000))
    deployment_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    shared_collections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The tenant's collections every course of this platform also searches, after its own."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LtiKey(Base):
    """One of the tool's RSA key pairs. The newest unretired key signs; retired keys stay in
    ``/lti/jwks`` for a grace period so platforms that cached the old set still verify."""

    __tablename__ = "lti_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LtiState(Base):
    """A login initiation waiting for its launch: consumed (deleted) by the one launch that
    presents ``state``; the id_token must carry ``nonce``."""

    __tablename__ = "lti_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[str] = mapped_column(String(32))
    target_link_uri: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LtiCourse(Base):
    """A platform's course (``context.id``) and the knowledge collection its documents live in."""

    __tablename__ = "lti_courses"
    __table_args__ = (UniqueConstraint("platform_id", "context_id", name="uq_lti_courses_platform_context"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    platform_id: Mapped[str] = mapped_column(String(32), index=True)
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    collection: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_launch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LtiSession(Base):
    """What a verified launch allows the launched page: the token's SHA-256 is the key (the
    token itself is never stored); roles come from the signed launch only."""

    __tablename__ = "lti_sessions"
    __table_args__ = (Index("ix_lti_sessions_expires_at", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    platform_id: Mapped[str] = mapped_column(String(32))
    course_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    instructor: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str] = mapped_column(String(16), default="en")
    message_type: Mapped[str] = mapped_column(String(64), default="LtiResourceLinkRequest")
    deployment_id: Mapped[str] = mapped_column(String(255), default="")
    deep_link: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """For a deep-linking launch: the platform's ``deep_linking_settings`` (return URL, data)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
