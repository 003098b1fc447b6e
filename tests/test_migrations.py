"""Schema migrations on SQLite and PostgreSQL (``db_url``): an installation from before
migrations (``tests/data/schema_before_migrations``) upgraded by the real ``mentorly db
upgrade`` with every row intact; an outdated database refused by ``Database`` and by
``mentorly serve``; the migrations' schema equal to the models'; many first opens at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, Table, create_engine, inspect, select, text
from sqlalchemy.engine import Engine

import tools.recommendation.store  # noqa: F401  (registers rec_items and rec_events on Base)
from assistant.errors import ConfigError, SchemaOutdated
from assistant.storage import Database
from assistant.storage.models import Base
from assistant.storage.schema import (
    alembic_config,
    current_revision,
    head_revision,
    schema_state,
    upgrade,
)
from knowledge.leases import LeaseRow
from knowledge.store import KnowledgeTables
from mentorly_app.cli import cli
from tests.conftest import REPO_ROOT

DUMPS = REPO_ROOT / "tests" / "data" / "schema_before_migrations"
OLD_TABLES = ["tenants", "users", "conversations", "messages", "api_keys", "widget_keys", "usage",
              "audit_log", "kb_collections", "kb_documents", "kb_chunks", "rec_items", "rec_events"]
HEAD = "0003_lti"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A bare engine on the test's database (disposed after the test)."""
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def load_old_dump(url: str) -> None:
    """The pre-migration installation: the dump executed into the empty database."""
    if is_sqlite(url):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.executescript((DUMPS / "sqlite.sql").read_text())
        conn.close()
    else:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((DUMPS / "postgresql.sql").read_text().encode())


def snapshot(engine: Engine, columns: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Every row of every old table (only ``columns`` when given), in primary-key order."""
    inspector = inspect(engine)
    found = {}
    with engine.connect() as conn:
        for table in OLD_TABLES:
            names = columns[table] if columns else [c["name"] for c in inspector.get_columns(table)]
            t = Table(table, MetaData(), autoload_with=conn)
            key = list(t.primary_key.columns)
            rows = conn.execute(select(*[t.c[n] for n in names]).order_by(*key)).all()
            found[table] = {"columns": names, "rows": [tuple(r) for r in rows]}
    return found


def models_metadata() -> MetaData:
    """The models' schema: the core's ``Base`` (rec tables included) and the knowledge tables
    (``leases`` included), in one MetaData for Alembic's comparison."""
    combined = MetaData()
    for table in [*Base.metadata.tables.values(), *KnowledgeTables.metadata.tables.values()]:
        table.to_metadata(combined)
    assert {"rec_items", "rec_events", "leases", "rate_counts", "kb_chunks"} <= set(combined.tables)
    assert LeaseRow.__tablename__ == "leases"
    return combined


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True})
        return list(compare_metadata(context, models_metadata()))


def run_cli(url: str, home: Path, *args: str) -> Result:
    env = {"MENTORLY_DATABASE_URL": url, "MENTORLY_HOME": str(home)}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_an_installation_from_before_migrations_is_upgraded_with_every_row_intact(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    load_old_dump(db_url)
    before = snapshot(engine)
    counts = {table: len(content["rows"]) for table, content in before.items()}
    assert all(counts.values()), counts  # the dump filled every table
    assert sum(counts.values()) == 28
    assert "vector" not in {c["name"] for c in inspect(engine).get_columns("kb_chunks")}

    status = run_cli(db_url, tmp_path / "home", "db", "current")
    assert status.exit_code == 1
    assert "current: none (before migrations)" in status.output
    assert "behind: run `mentorly db upgrade`" in status.output

    result = run_cli(db_url, tmp_path / "home", "db", "upgrade")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("  applied 0001_baseline: Baseline")
    assert lines[1].startswith("  applied 0002_shared_state: Shared state")
    assert lines[2].startswith("  applied 0003_lti: LTI 1.3 platforms")
    assert lines[3] == f"Upgraded the database schema: none (before migrations) -> {HEAD}"

    after = snapshot(engine, {t: content["columns"] for t, content in before.items()})
    assert after == before
    inspector = inspect(engine)
    assert {"vector", "vector2"} <= {c["name"] for c in inspector.get_columns("kb_chunks")}
    assert {"leases", "rate_counts", "alembic_version"} <= set(inspector.get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kb_chunks WHERE vector IS NULL "
                                 "AND vector2 IS NULL")).scalar() == 2
    assert schema_differences(engine) == []

    status = run_cli(db_url, tmp_path / "home", "db", "current")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines() == [f"current: {HEAD}", f"head:    {HEAD}", "up to date"]
    again = run_cli(db_url, tmp_path / "home", "db", "upgrade")
    assert again.exit_code == 0 and f"up to date ({HEAD})" in again.output

    db = Database(db_url)
    try:
        conversation = db.get_conversation("acme", conversation_id(engine, "Photosynthesis"))
        assert conversation.title == "Photosynthesis"
        assert [(m.role, m.content) for m in db.messages("acme", conversation.id)] == [
            ("user", "What is photosynthesis?"), ("assistant", "Plants turn light into sugar [1].")]
        user = db.ensure_user("beta", "learner-2")
        assert user.display_name == "李雷"  # the old row, not a new one
        chinese = db.open_conversation("beta", user, conversation_id(engine, "光合作用"), title="")
        assert [m.meta for m in db.messages("beta", chinese.id)] == [{"lang": "zh"}, {}]
        db.add_messages(chinese.id, [("user", "谢谢", {})])  # and it takes new rows
        assert [m.seq for m in db.messages("beta", chinese.id)] == [0, 1, 2]
    finally:
        db.engine.dispose()


def conversation_id(engine: Engine, title: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT id FROM conversations WHERE title = :t"),
                                {"t": title}).scalar_one())


def test_an_outdated_database_is_refused_until_upgraded(db_url: str, engine: Engine) -> None:
    load_old_dump(db_url)
    with pytest.raises(SchemaOutdated, match="run `mentorly db upgrade`") as refused:
        Database(db_url)
    assert f"at none (before migrations), needs {HEAD}" in refused.value.message
    assert "MENTORLY_DATABASE_AUTO_UPGRADE=1" in refused.value.message
    assert isinstance(refused.value, ConfigError)
    assert current_revision(engine) is None  # refusing changed nothing
    assert "leases" not in inspect(engine).get_table_names()

    rows = snapshot(engine)
    db = Database(db_url, auto_upgrade=True)
    try:
        assert current_revision(engine) == HEAD
        assert snapshot(engine, {t: c["columns"] for t, c in rows.items()}) == rows
        assert schema_state(db.engine).is_current
    finally:
        db.engine.dispose()


def test_mentorly_serve_on_an_outdated_database_exits_with_the_message(
        db_url: str, tmp_path: Path) -> None:
    load_old_dump(db_url)
    env = {**os.environ, "MENTORLY_HOME": str(tmp_path / "home"), "MENTORLY_DATABASE_URL": db_url,
           "MENTORLY_LLM__BACKEND": "fake", "PYTHONPATH": str(REPO_ROOT)}
    # serving would never return: the timeout turns that into a failure
    out = subprocess.run([sys.executable, "-m", "mentorly_app", "serve", "--port", "1"], env=env,
                         text=True, capture_output=True, timeout=120)
    assert out.returncode == 1
    assert "Error: The database schema is older than this version of Mentorly" in out.stderr
    assert "run `mentorly db upgrade`" in out.stderr
    assert "Traceback" not in out.stderr and "starting" not in out.stdout


def test_an_old_database_without_the_secondary_columns_gains_them(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    """The hand-written ALTER the old code ran at start-up is the baseline's now."""
    load_old_dump(db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE kb_collections DROP COLUMN secondary"))
        conn.execute(text("ALTER TABLE kb_collections DROP COLUMN secondary_dim"))
    rows = snapshot(engine)
    assert run_cli(db_url, tmp_path, "db", "upgrade").exit_code == 0
    assert {"secondary", "secondary_dim"} <= {
        c["name"] for c in inspect(engine).get_columns("kb_collections")}
    assert snapshot(engine, {t: c["columns"] for t, c in rows.items()}) == rows
    assert schema_differences(engine) == []


def test_tables_created_by_this_version_before_the_upgrade_do_not_break_it(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    """A process of this version may run the knowledge library's ``create_all`` (it makes
    ``leases``) on the old database before anyone upgrades it."""
    load_old_dump(db_url)
    KnowledgeTables.metadata.create_all(engine)
    assert "leases" in inspect(engine).get_table_names()
    with pytest.raises(SchemaOutdated):  # kb_chunks still lacks its vectors
        Database(db_url)
    assert run_cli(db_url, tmp_path, "db", "upgrade").exit_code == 0
    assert current_revision(engine) == HEAD
    assert schema_differences(engine) == []


def test_a_failing_migration_changes_nothing(db_url: str, engine: Engine, tmp_path: Path) -> None:
    """The migrations run in one transaction (SQLite's DDL too): 0002 failing on its last
    table takes 0001's indexes and 0002's new columns back with it."""
    load_old_dump(db_url)
    with engine.begin() as conn:  # a name 0002 cannot create its table under
        conn.execute(text("CREATE VIEW rate_counts AS SELECT 1 AS x"))
        conn.execute(text("DROP INDEX ix_usage_at"))
    rows = snapshot(engine)
    result = run_cli(db_url, tmp_path, "db", "upgrade")
    assert result.exit_code == 1
    assert "cannot upgrade database" in result.output and "nothing was changed" in result.output
    inspector = inspect(engine)
    assert current_revision(engine) is None
    assert "vector" not in {c["name"] for c in inspector.get_columns("kb_chunks")}
    assert "leases" not in inspector.get_table_names()
    assert "ix_usage_at" not in {ix["name"] for ix in inspector.get_indexes("usage")}
    assert snapshot(engine) == rows
    with pytest.raises(ConfigError, match="cannot open database"):  # and auto-upgrade says so
        Database(db_url, auto_upgrade=True)


def test_migrations_make_exactly_the_models_schema(db_url: str, engine: Engine) -> None:
    applied: list[str] = []
    result = upgrade(db_url, progress=applied.append)
    assert result.before is None and result.after == HEAD == head_revision()
    assert result.applied == ["0001_baseline", "0002_shared_state", HEAD] and len(applied) == 3
    assert schema_differences(engine) == []
    # and a new database opened by Database (create_all + stamp) is the same schema
    assert current_revision(engine) == HEAD


def test_a_new_database_is_created_at_head_without_running_migrations(
        db_url: str, engine: Engine) -> None:
    db = Database(db_url)
    try:
        assert current_revision(engine) == HEAD
        state = schema_state(engine)
        assert (state.current, state.head, state.is_current) == (HEAD, HEAD, True)
        assert schema_differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        db.engine.dispose()


def test_tables_made_by_the_knowledge_library_first_are_adopted(
        db_url: str, engine: Engine) -> None:
    """``knowledge``'s own ``create_all`` may run on a new database before ``Database``:
    its tables are current, so the database is completed and stamped, not refused."""
    KnowledgeTables.metadata.create_all(engine)
    db = Database(db_url)
    try:
        assert current_revision(engine) == HEAD
        assert schema_differences(engine) == []
    finally:
        db.engine.dispose()


def test_downgrading_one_step_then_upgrading_again(db_url: str, engine: Engine,
                                                   tmp_path: Path) -> None:
    Database(db_url).engine.dispose()
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001_baseline")
    assert current_revision(engine) == "0001_baseline"
    assert "vector" not in {c["name"] for c in inspect(engine).get_columns("kb_chunks")}
    assert not {"leases", "rate_counts"} & set(inspect(engine).get_table_names())
    with pytest.raises(SchemaOutdated, match=f"at 0001_baseline, needs {HEAD}"):
        Database(db_url)
    status = run_cli(db_url, tmp_path, "db", "current")
    assert status.exit_code == 1 and "current: 0001_baseline" in status.output
    result = run_cli(db_url, tmp_path, "db", "upgrade")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == f"Upgraded the database schema: 0001_baseline -> {HEAD}"
    assert schema_differences(engine) == []


def test_a_database_from_a_newer_mentorly_is_left_alone(db_url: str, engine: Engine,
                                                        tmp_path: Path) -> None:
    Database(db_url).engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    for auto_upgrade in (False, True):
        with pytest.raises(ConfigError, match=r"\(0099_future\) is newer than this version"):
            Database(db_url, auto_upgrade=auto_upgrade)
    result = run_cli(db_url, tmp_path, "db", "upgrade")
    assert result.exit_code == 1 and "upgrade Mentorly" in result.output
    status = run_cli(db_url, tmp_path, "db", "current")
    assert status.exit_code == 1 and "current: 0099_future" in status.output
    assert current_revision(engine) == "0099_future"


def open_at_once(url: str, n: int, **kwargs: Any) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    opened: list[Database] = []

    def first_open() -> None:
        barrier.wait()
        try:
            opened.append(Database(url, **kwargs))
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            errors.append(exc)

    threads = [threading.Thread(target=first_open) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for db in opened:
        db.engine.dispose()
    assert len(opened) + len(errors) == n
    return errors


def test_many_first_opens_of_a_new_database_at_once_all_succeed(db_url: str, engine: Engine) -> None:
    assert open_at_once(db_url, 8) == []
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert schema_differences(engine) == []


def test_many_auto_upgrades_of_an_old_database_at_once_upgrade_it_once(
        db_url: str, engine: Engine) -> None:
    load_old_dump(db_url)
    rows = snapshot(engine)
    assert open_at_once(db_url, 4, auto_upgrade=True) == []
    assert current_revision(engine) == HEAD
    assert snapshot(engine, {t: c["columns"] for t, c in rows.items()}) == rows
