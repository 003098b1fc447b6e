"""Shared state for replicas: chunk vectors in the database, leases, per-minute rate counts.

``kb_chunks.vector``/``vector2`` hold each chunk's unit vectors (float32 bytes) from the
collection's primary and secondary embedders (NULL until a collection is backfilled);
``leases`` gives one replica at a time a named job; ``rate_counts`` counts requests per key
and minute for every replica. Idempotent like the baseline: a process of this version may
have created ``leases`` or ``rate_counts`` with ``create_all`` before the upgrade ran.

Revision ID: 0002_shared_state
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_shared_state"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None

VECTOR_COLUMNS = ("vector", "vector2")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("kb_chunks")}
    missing = [name for name in VECTOR_COLUMNS if name not in columns]
    if missing:
        with op.batch_alter_table("kb_chunks") as batch:
            for name in missing:
                batch.add_column(sa.Column(name, sa.LargeBinary(), nullable=True))
    if "leases" not in existing:
        op.create_table(
            "leases",
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("holder", sa.String(200), nullable=False),
            sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    if "rate_counts" not in existing:
        op.create_table(
            "rate_counts",
            sa.Column("key", sa.String(300), nullable=False),
            sa.Column("minute", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("key", "minute"),
        )


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in ("rate_counts", "leases"):
        if name in existing:
            op.drop_table(name)
    with op.batch_alter_table("kb_chunks") as batch:
        for name in reversed(VECTOR_COLUMNS):
            batch.drop_column(name)
