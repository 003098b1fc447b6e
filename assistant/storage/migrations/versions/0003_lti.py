"""LTI 1.3 platforms, keys, logins, courses and sessions; usage per course.

Registered platforms, the tool's signing keys, pending logins, courses and launch sessions;
``usage.course`` and ``usage.launches`` meter use per course; ``conversations.course`` keeps a
learner's conversations of one course apart from another's. Idempotent like the baseline (a process of
this version may have created the tables with ``create_all`` before the upgrade ran).

Revision ID: 0003_lti
Revises: 0002_shared_state
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_lti"
down_revision: str | None = "0002_shared_state"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("lti_sessions", "lti_courses", "lti_states", "lti_keys", "lti_platforms")


def _created(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _add_columns(table: str, columns: list[sa.Column[Any]]) -> None:
    """NOT NULL columns: a server default fills the existing rows, then goes (the models have none)."""
    if not columns:
        return
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.add_column(column)
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.alter_column(column.name, server_default=None)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    usage_columns = {c["name"] for c in inspector.get_columns("usage")}
    wanted = (sa.Column("course", sa.String(100), nullable=False, server_default=""),
              sa.Column("launches", sa.Integer(), nullable=False, server_default="0"))
    new_columns = [column for column in wanted if column.name not in usage_columns]
    _add_columns("usage", new_columns)
    if "course" not in {c["name"] for c in inspector.get_columns("conversations")}:
        _add_columns("conversations",
                     [sa.Column("course", sa.String(100), nullable=False, server_default="")])
    if "lti_platforms" not in existing:
        op.create_table(
            "lti_platforms",
            sa.Column("id", sa.String(32), nullable=False),
            sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("issuer", sa.String(500), nullable=False),
            sa.Column("client_id", sa.String(255), nullable=False),
            sa.Column("auth_login_url", sa.String(1000), nullable=False),
            sa.Column("auth_token_url", sa.String(1000), nullable=False),
            sa.Column("key_set_url", sa.String(1000), nullable=False),
            sa.Column("deployment_ids", sa.JSON(), nullable=False),
            sa.Column("shared_collections", sa.JSON(), nullable=False),
            _created("created_at"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),
        )
        op.create_index("ix_lti_platforms_tenant_id", "lti_platforms", ["tenant_id"])
    if "lti_keys" not in existing:
        op.create_table(
            "lti_keys",
            sa.Column("kid", sa.String(64), nullable=False),
            sa.Column("private_pem", sa.Text(), nullable=False),
            sa.Column("encrypted", sa.Boolean(), nullable=False),
            sa.Column("public_jwk", sa.JSON(), nullable=False),
            _created("created_at"),
            sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("kid"),
        )
    if "lti_states" not in existing:
        op.create_table(
            "lti_states",
            sa.Column("state", sa.String(64), nullable=False),
            sa.Column("nonce", sa.String(64), nullable=False),
            sa.Column("platform_id", sa.String(32), nullable=False),
            sa.Column("target_link_uri", sa.String(1000), nullable=False),
            _created("created_at"),
            _created("expires_at"),
            sa.PrimaryKeyConstraint("state"),
            sa.UniqueConstraint("nonce"),
        )
        op.create_index("ix_lti_states_expires_at", "lti_states", ["expires_at"])
    if "lti_courses" not in existing:
        op.create_table(
            "lti_courses",
            sa.Column("id", sa.String(32), nullable=False),
            sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
            sa.Column("platform_id", sa.String(32), nullable=False),
            sa.Column("context_id", sa.String(255), nullable=False),
            sa.Column("title", sa.String(300), nullable=False),
            sa.Column("collection", sa.String(100), nullable=False),
            _created("created_at"),
            _created("last_launch_at"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("platform_id", "context_id", name="uq_lti_courses_platform_context"),
        )
        op.create_index("ix_lti_courses_tenant_id", "lti_courses", ["tenant_id"])
        op.create_index("ix_lti_courses_platform_id", "lti_courses", ["platform_id"])
    if "lti_sessions" not in existing:
        op.create_table(
            "lti_sessions",
            sa.Column("token_hash", sa.String(64), nullable=False),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("platform_id", sa.String(32), nullable=False),
            sa.Column("course_id", sa.String(32), nullable=True),
            sa.Column("user", sa.String(200), nullable=False),
            sa.Column("display_name", sa.String(200), nullable=False),
            sa.Column("roles", sa.JSON(), nullable=False),
            sa.Column("instructor", sa.Boolean(), nullable=False),
            sa.Column("locale", sa.String(16), nullable=False),
            sa.Column("message_type", sa.String(64), nullable=False),
            sa.Column("deployment_id", sa.String(255), nullable=False),
            sa.Column("deep_link", sa.JSON(), nullable=True),
            _created("created_at"),
            _created("expires_at"),
            sa.PrimaryKeyConstraint("token_hash"),
        )
        op.create_index("ix_lti_sessions_expires_at", "lti_sessions", ["expires_at"])


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in TABLES:
        if name in existing:
            op.drop_table(name)
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("course")
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("launches")
        batch.drop_column("course")
