"""The docstore: collections, documents and chunks in SQL (SQLite or PostgreSQL).

The database is the source of truth, the chunks' vectors included; each replica's FAISS files
are a cache of them (``knowledge.cache``). A chunk's primary key is its id in the FAISS index.
Documents carry a ``status`` that makes ingestion crash-safe: new versions are written
``pending`` and made ``ready`` at a commit point that also bumps the collection's
``generation``; the next holder of the collection's lease undoes what a dead writer left
(``knowledge.recovery``). ``deleting`` is only found in rows written before that protocol.
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from knowledge.sqlite import pragmas

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
    # bumped in the transaction of every change of the collection's ready documents (and their
    # vectors): replicas compare it with their cache's (knowledge.cache)
    generation: Mapped[int] = mapped_column(Integer, default=0)
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
    # The chunk's unit vectors (float32 bytes) from the collection's primary and secondary
    # embedders: the database is the source of truth, each replica's FAISS files a cache of it.
    # NULL only in rows from before migration 0002, until the collection is backfilled.
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)
    vector2: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)

    document: Mapped[DocumentRow] = relationship(back_populates="chunks")


_sqlite_pragmas = pragmas(10000)


def make_sessionmaker(url: str) -> sessionmaker:
    engine: Engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    # A new database gets the tables here; an existing one is upgraded by the migrations
    # (``mentorly db upgrade``), never by ALTERs at start-up.
    KnowledgeTables.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
