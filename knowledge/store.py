"""The docstore: collections, documents and chunks in SQL (SQLite or PostgreSQL).

A chunk's primary key is its id in the FAISS index. Documents carry a ``status`` that makes
ingestion crash-safe: new versions are written ``pending`` and old ones marked ``deleting``
before the index file is replaced; ``KnowledgeBase`` finishes or undoes an interrupted write
when it next opens the collection (see ``knowledge.recovery``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

ID = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid

READY, PENDING, DELETING = "ready", "pending", "deleting"


def _now() -> datetime:
    return datetime.now(UTC)


class KnowledgeTables(DeclarativeBase):
    pass


class CollectionRow(KnowledgeTables):
    __tablename__ = "kb_collections"
    __table_args__ = (UniqueConstraint("tenant", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    embedder: Mapped[str] = mapped_column(String(300))
    dim: Mapped[int] = mapped_column(Integer)
    # optional second embedder with its own index file (None: the primary index only)
    secondary: Mapped[str | None] = mapped_column(String(300), nullable=True, default=None)
    secondary_dim: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped on every index write
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    documents: Mapped[list[DocumentRow]] = relationship(back_populates="collection",
                                                        cascade="all, delete-orphan")


class DocumentRow(KnowledgeTables):
    __tablename__ = "kb_documents"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("kb_collections.id", ondelete="CASCADE"),
                                               index=True)
    source: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    n_chunks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    collection: Mapped[CollectionRow] = relationship(back_populates="documents")
    chunks: Mapped[list[ChunkRow]] = relationship(back_populates="document",
                                                  cascade="all, delete-orphan")


class ChunkRow(KnowledgeTables):
    __tablename__ = "kb_chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("kb_documents.id", ondelete="CASCADE"),
                                             index=True)
    collection_id: Mapped[int] = mapped_column(Integer, index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    document: Mapped[DocumentRow] = relationship(back_populates="chunks")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


_ADDED_COLUMNS = {"kb_collections": {"secondary": "VARCHAR(300)", "secondary_dim": "INTEGER"}}


def _add_missing_columns(engine: Engine) -> None:
    """Nullable columns added after a database was created (``create_all`` adds tables, not
    columns); existing collections keep NULL there, i.e. no secondary index."""
    insp = inspect(engine)
    for table, columns in _ADDED_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table)}
        missing = {n: t for n, t in columns.items() if n not in have}
        if missing:
            with engine.begin() as conn:
                for name, sql_type in missing.items():
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))


def make_sessionmaker(url: str) -> sessionmaker:
    engine: Engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    KnowledgeTables.metadata.create_all(engine)
    _add_missing_columns(engine)
    return sessionmaker(engine, expire_on_commit=False)
