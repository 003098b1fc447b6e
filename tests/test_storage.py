"""The core's database queries, on SQLite and on PostgreSQL (``db_url``); the SQLite file's own
concerns (its folder, its pragmas) on SQLite only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from assistant.errors import ConfigError, InvalidInput, NotFound
from assistant.storage import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.engine.dispose()


def test_users_are_per_tenant_and_created_once(db: Database) -> None:
    a = db.ensure_user("school-a", "learner-1")
    assert db.ensure_user("school-a", "learner-1").id == a.id
    assert db.ensure_user("school-b", "learner-1").id != a.id
    assert db.ensure_user("school-a", None).external_id == "anonymous"


def test_messages_keep_order_and_survive_reopening(db: Database, db_url: str) -> None:
    user = db.ensure_user("t", "u")
    conv = db.open_conversation("t", user, None, title="first question")
    db.add_messages(conv.id, [("user", "hi", {}), ("assistant", "hello", {"route": {"tool": None}})])
    db.add_messages(conv.id, [("user", "again", {}), ("assistant", "yes", {})])
    reopened = Database(db_url)
    try:
        rows = reopened.messages("t", conv.id)
        assert [(m.seq, m.role, m.content) for m in rows] == [
            (0, "user", "hi"), (1, "assistant", "hello"), (2, "user", "again"), (3, "assistant", "yes")]
        assert rows[1].meta == {"route": {"tool": None}}
        assert [m.content for m in reopened.history(conv.id, limit=2)] == ["again", "yes"]
    finally:
        reopened.engine.dispose()


def test_tenants_and_users_cannot_reach_each_others_conversations(db: Database) -> None:
    alice = db.ensure_user("t", "alice")
    bob = db.ensure_user("t", "bob")
    conv = db.open_conversation("t", alice, None, title="x")
    with pytest.raises(NotFound):
        db.get_conversation("other-tenant", conv.id)
    with pytest.raises(NotFound):
        db.open_conversation("t", bob, conv.id, title="x")
    with pytest.raises(NotFound):
        db.messages("t", "does-not-exist")


def test_nul_characters_are_dropped_from_text_and_refused_in_user_ids(db: Database) -> None:
    """PostgreSQL's text types refuse NUL (a 500 before); SQLite stored it. Same on both now."""
    user = db.ensure_user("school-a", "learner-1", display_name="Ada\x00")
    assert user.display_name == "Ada"
    conv = db.open_conversation("school-a", user, None, "pasted\x00 title")
    db.add_messages(conv.id, [("user", "a\x00b", {"raw": "x\x00y"}), ("assistant", "ok", {})])
    stored = db.messages("school-a", conv.id)
    assert [m.content for m in stored] == ["ab", "ok"]
    assert stored[0].meta == {"raw": "x\x00y"}  # JSON escapes it; kept as sent
    assert db.get_conversation("school-a", conv.id).title == "pasted title"
    with pytest.raises(InvalidInput, match="NUL"):
        db.ensure_user("school-a", "learner\x00-2")


def test_a_bad_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot open database"):
        Database("nosuchdialect://x")


def test_an_unreachable_server_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot open database"):
        Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing")


def test_the_sqlite_folder_is_created(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'deeper' / 'm.db'}")
    db.ensure_user("t", "u")
    assert (tmp_path / "sub" / "deeper" / "m.db").is_file()
    db.engine.dispose()


def test_a_sqlite_folder_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create the database folder"):
        Database(f"sqlite:///{tmp_path / 'file' / 'm.db'}")


def test_sqlite_connections_use_wal_and_enforce_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    db.engine.dispose()
