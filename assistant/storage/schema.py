"""The database schema's version: where a database stands, and bringing it to this code's head.

Alembic's scripts live in ``assistant/storage/migrations`` and are configured here in code
(no ``alembic.ini``). ``Database`` calls ``ensure_schema`` when it opens a database:

- versioned and at head: nothing to do (one cheap query: the common case);
- versioned and behind: upgraded when ``auto_upgrade`` (``database_auto_upgrade``), else
  ``SchemaOutdated`` naming ``mentorly db upgrade``;
- not versioned (no ``alembic_version`` table) and every existing table already has every
  column of the models (a new database, or one ``knowledge``'s own ``create_all`` made
  moments ago): the missing tables come from ``create_all`` and the database is stamped at
  head, which costs milliseconds instead of a migration run;
- not versioned and some table lacks a column: an installation from before migrations,
  treated as behind;
- a revision this code does not know: a newer Mentorly made it, and nothing here touches it.

Several processes may open a new database at once (replicas, test threads): every decision is
taken again under a lock (PostgreSQL: ``pg_advisory_xact_lock`` in the DDL's transaction;
SQLite: ``BEGIN IMMEDIATE``, one writer at a time), so one of them creates and stamps and the
others find it done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

import knowledge.leases  # noqa: F401  (registers the leases table on KnowledgeTables)
from assistant.errors import ConfigError, SchemaOutdated
from assistant.storage import audit as _audit  # noqa: F401  (the models' tables, all registered)
from assistant.storage import keys as _keys  # noqa: F401
from assistant.storage import lti as _lti  # noqa: F401
from assistant.storage import rate_counts as _rate_counts  # noqa: F401
from assistant.storage import usage as _usage  # noqa: F401
from assistant.storage import widget_keys as _widget_keys  # noqa: F401
from assistant.storage.models import Base
from knowledge.store import KnowledgeTables

if TYPE_CHECKING:  # Alembic (0.1 s to import) only once a database is opened
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)
# Alembic's INFO lines: one per autogenerate plugin on import (1.16+), and "Will assume
# non-transactional DDL" on SQLite although our migrations run in one transaction. What an
# operator needs (each applied migration) is reported here instead.
for _name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_HINT = ("Back it up, then run `mentorly db upgrade` (or set database_auto_upgrade = true, "
                "env MENTORLY_DATABASE_AUTO_UPGRADE=1).")
BEFORE_MIGRATIONS = "none (before migrations)"
# PostgreSQL advisory lock key of schema changes ("mentorly" in ASCII); locks are per database
_PG_LOCK_KEY = int.from_bytes(b"mentorly", "big") & 0x7FFF_FFFF_FFFF_FFFF
# Alembic's own version table, declared as ``DefaultImpl.version_table_impl`` does, so stamping
# a new database needs no migration context (whose set-up logs two INFO lines per call)
_VERSION = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: ``current`` is None for a database without a version."""

    current: str | None
    head: str
    is_current: bool
    reason: str
    before_migrations: bool = False  # unversioned, with tables from before migrations

    @property
    def shown_current(self) -> str:
        if self.current is not None:
            return self.current
        return BEFORE_MIGRATIONS if self.before_migrations else "none"


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str
    applied: list[str] = field(default_factory=list)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration in code: the packaged scripts, and the connection to use."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this code's models correspond to."""
    head = _scripts().get_current_head()
    assert head is not None  # the package ships its version scripts
    return head


@lru_cache(maxsize=1)
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def _revision_of(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if len(versions) > 1:  # Alembic branches: this project has one line of history
        raise ConfigError(f"the database has several schema versions ({', '.join(versions)})")
    return versions[0] if versions else None


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None when it has no version (new, or from before migrations)."""
    with engine.connect() as conn:
        return _revision_of(conn)


def _model_tables() -> list[Table]:
    return [*Base.metadata.sorted_tables, *KnowledgeTables.metadata.sorted_tables]


def _stale_tables(conn: Connection) -> list[str]:
    """Existing tables that lack a column the models define ("kb_chunks (vector, vector2)")."""
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    stale = []
    for table in _model_tables():
        if table.name in existing:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in have]
            if missing:
                stale.append(f"{table.name} ({', '.join(missing)})")
    return stale


def _newer_message(current: str, head: str) -> str:
    return (f"The database schema ({current}) is newer than this version of Mentorly knows "
            f"(head {head}): upgrade Mentorly, or downgrade the database with the migrations "
            "of the newer version.")


def outdated_message(current: str | None, head: str) -> str:
    return (f"The database schema is older than this version of Mentorly (at "
            f"{current or BEFORE_MIGRATIONS}, needs {head}). {UPGRADE_HINT}")


def schema_state(engine: Engine) -> SchemaState:
    """Where the database stands against this code (``/readyz``, ``mentorly db current``)."""
    head = head_revision()
    with engine.connect() as conn:
        current = _revision_of(conn)
        if current == head:
            return SchemaState(current, head, True, "up to date")
        if current is not None and current not in _known_revisions():
            return SchemaState(current, head, False, _newer_message(current, head))
        stale = current is None and bool(_stale_tables(conn))
        if current is None and not stale:
            return SchemaState(None, head, False, "not versioned yet: the next start (or `mentorly "
                               "db upgrade`) creates the missing tables and stamps it")
    return SchemaState(current, head, False, "behind: run `mentorly db upgrade`",
                       before_migrations=stale)


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the schema lock; committed on success.

    SQLite: foreign keys off for the duration (a table copied by a batch migration must not
    cascade deletes into its children; the pragma is ignored inside a transaction), then
    ``BEGIN IMMEDIATE``: the write lock, waited for up to the busy timeout."""
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                yield conn
            return
        foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if foreign_keys:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _migrate(conn: Connection, progress: Callable[[str], None] | None) -> list[str]:
    """Run the version scripts up to head on ``conn`` (already locked); the revisions applied."""
    applied: list[str] = []

    def on_apply(*, step: Any, **_: Any) -> None:
        if step.is_upgrade and step.up_revision_id:
            applied.append(step.up_revision_id)
            if progress is not None:
                script = _scripts().get_revision(step.up_revision_id)
                what = script.doc if script is not None else ""
                progress(f"{step.up_revision_id}: {what}" if what else step.up_revision_id)

    from alembic import command

    config = alembic_config(conn)
    config.attributes["on_version_apply"] = on_apply
    command.upgrade(config, "head")
    return applied


def _check_known(current: str | None, head: str) -> None:
    if current is not None and current not in _known_revisions():
        raise ConfigError(_newer_message(current, head))


def open_engine(url: str) -> Engine:
    """A bare engine (no pragmas, no schema check), for the migration commands."""
    try:
        return create_engine(url)
    except Exception as exc:  # bad URL or missing driver
        raise ConfigError(f"cannot open database {url.split('@')[-1]}: {exc}") from exc


def upgrade(target: Engine | str, progress: Callable[[str], None] | None = None) -> UpgradeResult:
    """Bring the database to head (``mentorly db upgrade``); ``progress`` gets one line per
    applied migration. Works on any database this code knows, including one from before
    migrations (the baseline is idempotent); refuses one a newer Mentorly made."""
    engine = open_engine(target) if isinstance(target, str) else target
    head = head_revision()
    try:
        with _schema_lock(engine) as conn:
            before = _revision_of(conn)
            _check_known(before, head)
            applied = _migrate(conn, progress) if before != head else []
    except DBAPIError as exc:  # unreachable, locked, or a migration failed (all rolled back)
        raise ConfigError(f"cannot upgrade database {engine.url.render_as_string()} (nothing "
                          f"was changed): {str(exc.orig).strip()}") from exc
    finally:
        if isinstance(target, str):
            engine.dispose()
    return UpgradeResult(before, head, applied)


def _lost_race(exc: DBAPIError) -> bool:
    """A table another process (not holding our lock: a ``create_all`` elsewhere) created
    between our check and our CREATE."""
    message = str(exc.orig).lower()
    return "already exists" in message or "duplicate key" in message


def ensure_schema(engine: Engine, auto_upgrade: bool = False) -> None:
    """Make the database usable by this code, or refuse (see the module's docstring)."""
    head = head_revision()
    with engine.connect() as conn:
        if _revision_of(conn) == head:
            return
    for attempt in range(3):
        try:
            with _schema_lock(engine) as conn:
                _ensure_locked(conn, head, auto_upgrade)
            return
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            if attempt == 2 or not _lost_race(exc):
                raise


def _ensure_locked(conn: Connection, head: str, auto_upgrade: bool) -> None:
    current = _revision_of(conn)  # again: another process may have finished meanwhile
    if current == head:
        return
    _check_known(current, head)
    if current is None:
        stale = _stale_tables(conn)
        if not stale:
            Base.metadata.create_all(conn)
            KnowledgeTables.metadata.create_all(conn)
            _VERSION.create(conn, checkfirst=True)
            conn.execute(_VERSION.insert().values(version_num=head))
            return
        log.info("tables from before migrations: %s", "; ".join(stale))
    if not auto_upgrade:
        raise SchemaOutdated(outdated_message(current, head))
    log.warning("upgrading the database schema from %s to %s (database_auto_upgrade)",
                current or BEFORE_MIGRATIONS, head)
    _migrate(conn, lambda line: log.warning("applied migration %s", line))
