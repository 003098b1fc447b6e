"""Baseline: the schema as ``create_all`` made it before migrations existed.

Reference: ``tests/data/schema_before_migrations`` (dumps made by the last pre-migration code,
commit d9340b3). Idempotent, because installations from before migrations already have these
tables: each table (with its indexes) is created only when missing, an existing table gains
only the indexes it lacks, and ``kb_collections`` gains ``secondary``/``secondary_dim`` when
it predates them (the hand-written ``ALTER TABLE`` the old code ran at start-up).

Revision ID: 0001_baseline
Revises: none
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# knowledge tables: BIGINT (BIGSERIAL) keys, except SQLite's INTEGER PRIMARY KEY (the rowid)
KB_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def _tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    )


def _conversations() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
    )


def _messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
    )


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    )


def _widget_keys() -> None:
    op.create_table(
        "widget_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
    )


def _usage() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("surface", sa.String(16), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("tool_calls", sa.Integer(), nullable=False),
        sa.Column("image_megapixels", sa.Float(), nullable=False),
        sa.Column("embedded_tokens", sa.Integer(), nullable=False),
        sa.Column("compute_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _kb_collections() -> None:
    op.create_table(
        "kb_collections",
        sa.Column("id", KB_ID, nullable=False, autoincrement=True),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("embedder", sa.String(300), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("secondary", sa.String(300), nullable=True),
        sa.Column("secondary_dim", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "name"),
        sqlite_autoincrement=True,
    )


def _kb_documents() -> None:
    op.create_table(
        "kb_documents",
        sa.Column("id", KB_ID, nullable=False, autoincrement=True),
        sa.Column("collection_id", KB_ID, nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["collection_id"], ["kb_collections.id"], ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )


def _kb_chunks() -> None:
    op.create_table(
        "kb_chunks",
        sa.Column("id", KB_ID, nullable=False, autoincrement=True),
        sa.Column("document_id", KB_ID, nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["document_id"], ["kb_documents.id"], ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )


def _rec_items() -> None:
    op.create_table(
        "rec_items",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("title_zh", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_zh", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("prerequisites", sa.JSON(), nullable=False),
        sa.Column("duration_min", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),  # without time zone, as it was
        sa.PrimaryKeyConstraint("tenant", "id"),
    )


def _rec_events() -> None:
    op.create_table(
        "rec_events",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "user", "resource", "kind", "ts_ms", name="uq_rec_event"),
    )


# In foreign-key order: a table after the tables it references.
TABLES: list[tuple[str, Callable[[], None]]] = [
    ("tenants", _tenants),
    ("users", _users),
    ("conversations", _conversations),
    ("messages", _messages),
    ("api_keys", _api_keys),
    ("widget_keys", _widget_keys),
    ("usage", _usage),
    ("audit_log", _audit_log),
    ("kb_collections", _kb_collections),
    ("kb_documents", _kb_documents),
    ("kb_chunks", _kb_chunks),
    ("rec_items", _rec_items),
    ("rec_events", _rec_events),
]

# (name, table, columns, unique)
INDEXES: list[tuple[str, str, list[str], bool]] = [
    ("ix_users_tenant_id", "users", ["tenant_id"], False),
    ("ix_conversations_tenant_id", "conversations", ["tenant_id"], False),
    ("ix_conversations_user_id", "conversations", ["user_id"], False),
    ("ix_messages_conv_seq", "messages", ["conversation_id", "seq"], False),
    ("ix_api_keys_prefix", "api_keys", ["prefix"], True),
    ("ix_api_keys_tenant_id", "api_keys", ["tenant_id"], False),
    ("ix_widget_keys_key", "widget_keys", ["key"], True),
    ("ix_widget_keys_tenant_id", "widget_keys", ["tenant_id"], False),
    ("ix_usage_at", "usage", ["at"], False),
    ("ix_usage_tenant_at", "usage", ["tenant_id", "at"], False),
    ("ix_usage_key_at", "usage", ["key", "at"], False),
    ("ix_audit_log_at", "audit_log", ["at"], False),
    ("ix_audit_log_tenant_id", "audit_log", ["tenant_id"], False),
    ("ix_audit_log_action", "audit_log", ["action"], False),
    ("ix_kb_collections_tenant", "kb_collections", ["tenant"], False),
    ("ix_kb_documents_collection_id", "kb_documents", ["collection_id"], False),
    ("ix_kb_chunks_document_id", "kb_chunks", ["document_id"], False),
    ("ix_kb_chunks_collection_id", "kb_chunks", ["collection_id"], False),
    ("ix_rec_items_subject", "rec_items", ["subject"], False),
    ("ix_rec_events_tenant_user", "rec_events", ["tenant", "user"], False),
]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, create in TABLES:
        if name not in existing:
            create()
    indexes = {table: {ix["name"] for ix in inspector.get_indexes(table)}
               for table in existing}
    for name, table, columns, unique in INDEXES:
        if name not in indexes.get(table, set()):
            op.create_index(name, table, columns, unique=unique)
    if "kb_collections" in existing:
        have = {c["name"] for c in inspector.get_columns("kb_collections")}
        missing = [sa.Column(n, t, nullable=True)
                   for n, t in (("secondary", sa.String(300)), ("secondary_dim", sa.Integer()))
                   if n not in have]
        if missing:
            with op.batch_alter_table("kb_collections") as batch:
                for column in missing:
                    batch.add_column(column)


def downgrade() -> None:
    """Back to an empty database: every table of the baseline, dropped (their rows with them)."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, _create in reversed(TABLES):
        if name in existing:
            op.drop_table(name)
