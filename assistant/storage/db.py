"""The database handle and the few queries the core needs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from assistant.errors import ConfigError, InvalidInput, NotFound
from assistant.storage.models import Base, Conversation, Message, Tenant, User
from assistant.storage.schema import ensure_schema
from knowledge.sqlite import pragmas as sqlite_pragmas

ANONYMOUS = "anonymous"


# In WAL mode synchronous=NORMAL never corrupts the file and loses nothing when the process
# dies; only an OS crash or power cut can lose the last commits. FULL costs an fsync per commit.
_sqlite_pragmas = sqlite_pragmas(5000, synchronous="NORMAL")


def insert_missing(session: Session, model: type[Base], values: dict[str, Any],
                   keys: tuple[str, ...]) -> None:
    """Insert a row unless one with the same ``keys`` (a primary key or unique constraint)
    exists, without failing when another transaction inserts it at the same moment.

    A check-then-insert lets two first requests both see nothing and both insert; the loser
    fails with a unique-constraint error. SQLite and PostgreSQL say "on conflict do nothing"
    in SQL (PostgreSQL waits for the other transaction, then skips); other databases insert
    in a savepoint and treat the integrity error as "already there". Python-side column
    defaults (ids, timestamps) apply as for ORM inserts."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            session.execute(sqlite_insert(model).values(**values)
                            .on_conflict_do_nothing(index_elements=list(keys)))
        else:
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            session.execute(postgresql_insert(model).values(**values)
                            .on_conflict_do_nothing(index_elements=list(keys)))
        return
    try:
        with session.begin_nested():
            session.add(model(**values))
    except IntegrityError:
        pass


def without_nul(text: str) -> str:
    """``text`` without NUL characters: PostgreSQL's text types refuse them (a 500 for a
    message a learner pasted from a binary file); they carry nothing a reader can see."""
    return text.replace("\x00", "") if "\x00" in text else text


def ensure_tenant(session: Session, tenant: str) -> None:
    """Create the tenant row on first use (tenants are named by keys, tokens and settings);
    safe when several first requests of a tenant arrive together."""
    if session.get(Tenant, tenant) is None:
        insert_missing(session, Tenant, {"id": tenant, "name": tenant}, ("id",))


class Database:
    """The core's database: an engine, its sessions, and the schema checked on opening (see
    ``assistant.storage.schema.ensure_schema``: a new database is created at the current
    schema; an older one is upgraded when ``auto_upgrade``, else refused with
    ``SchemaOutdated``)."""

    def __init__(self, url: str, *, auto_upgrade: bool = False) -> None:
        if url.startswith("sqlite:///"):
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the database folder {folder}: "
                                  f"{exc.strerror or exc}") from exc
        try:
            # Pre-ping guards against dropped server connections; a SQLite file has none, and the
            # extra round trip would be paid on every usage row.
            # A server's pool is sized for the worker threads (chat turns, tool calls and
            # uploads run in threads); the default 5 + 10 overflow closed and reopened
            # connections under 8 concurrent clients.
            pool = {} if url.startswith("sqlite") else {"pool_size": 20, "max_overflow": 20}
            self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"),
                                                **pool)
        except Exception as exc:  # bad URL or missing driver
            raise ConfigError(f"cannot open database {url.split('@')[-1]}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            ensure_schema(self.engine, auto_upgrade=auto_upgrade)
        except DBAPIError as exc:  # e.g. SQLite in a read-only folder, a server refusing us
            self.engine.dispose()
            raise ConfigError(f"cannot open database {url.split('@')[-1]}: {exc.orig}") from exc
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory (for code that manages its own transactions)."""
        return self._sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def ensure_user(self, tenant: str, external_id: str | None, display_name: str | None = None) -> User:
        """The user row, created on first use; exactly one row however many first requests
        of a new user arrive together (see ``insert_missing``)."""
        external_id = external_id or ANONYMOUS
        if "\x00" in external_id:  # PostgreSQL text cannot hold it; SQLite would
            raise InvalidInput("a user id may not contain a NUL character")
        display_name = without_nul(display_name) if display_name else display_name
        query = select(User).where(User.tenant_id == tenant, User.external_id == external_id)
        with self.session() as s:  # the common case: a read, no write lock
            user = s.scalar(query)
        if user is not None:
            return user
        with self.session() as s:  # starts with a write, so SQLite never upgrades a read lock
            insert_missing(s, Tenant, {"id": tenant, "name": tenant}, ("id",))
            insert_missing(s, User, {"tenant_id": tenant, "external_id": external_id,
                                     "display_name": display_name}, ("tenant_id", "external_id"))
            user = s.scalar(query)
            assert user is not None  # inserted now, or by the request that won the race
            return user

    def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        with self.session() as s:
            conv = s.get(Conversation, conversation_id)
            if conv is None or conv.tenant_id != tenant:
                raise NotFound(f"no conversation {conversation_id!r}")
            return conv

    def open_conversation(self, tenant: str, user: User, conversation_id: str | None,
                          title: str, course: str = "") -> Conversation:
        """The user's conversation, or a new one; ``course`` (an LTI course's collection, else
        "") is where it happens: a conversation of another course is not continued here."""
        if conversation_id:
            conv = self.get_conversation(tenant, conversation_id)
            if conv.user_id != user.id or (conv.course or "") != course:
                raise NotFound(f"no conversation {conversation_id!r}")
            return conv
        with self.session() as s:
            conv = Conversation(tenant_id=tenant, user_id=user.id, title=without_nul(title)[:200],
                                course=course[:100])
            s.add(conv)
            return conv

    def history(self, conversation_id: str, limit: int) -> list[Message]:
        """The last ``limit`` messages, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(Message).where(Message.conversation_id == conversation_id)
                .order_by(Message.seq.desc()).limit(limit)
            ).all()
            return list(reversed(rows))

    def add_messages(self, conversation_id: str, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Append (role, content, meta) items in one transaction: a turn is stored whole or not at all."""
        with self.session() as s:
            seq = s.scalar(select(func.max(Message.seq)).where(Message.conversation_id == conversation_id))
            seq = -1 if seq is None else seq
            for role, content, meta in items:
                seq += 1
                s.add(Message(conversation_id=conversation_id, seq=seq, role=role,
                              content=without_nul(content), meta=meta))
            conv = s.get(Conversation, conversation_id)
            if conv is not None:
                conv.updated_at = datetime.now(UTC)

    def messages(self, tenant: str, conversation_id: str) -> list[Message]:
        self.get_conversation(tenant, conversation_id)
        with self.session() as s:
            return list(s.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                  .order_by(Message.seq)).all())


_SHARED: dict[str, Database] = {}
_SHARED_LOCK = threading.Lock()


def shared_database(url: str, auto_upgrade: bool = False) -> Database:
    """One ``Database`` (engine, pool) per URL per process; plugins use this for their tables.
    ``auto_upgrade`` matters to the first call for a URL only: it opens (and checks) it."""
    with _SHARED_LOCK:
        db = _SHARED.get(url)
        if db is None:
            db = _SHARED[url] = Database(url, auto_upgrade=auto_upgrade)
        return db
