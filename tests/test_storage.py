from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import ConfigError, NotFound
from assistant.storage import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'sub' / 'm.db'}")


def test_users_are_per_tenant_and_created_once(db: Database) -> None:
    a = db.ensure_user("school-a", "learner-1")
    assert db.ensure_user("school-a", "learner-1").id == a.id
    assert db.ensure_user("school-b", "learner-1").id != a.id
    assert db.ensure_user("school-a", None).external_id == "anonymous"


def test_messages_keep_order_and_survive_reopening(db: Database, tmp_path: Path) -> None:
    user = db.ensure_user("t", "u")
    conv = db.open_conversation("t", user, None, title="first question")
    db.add_messages(conv.id, [("user", "hi", {}), ("assistant", "hello", {"route": {"tool": None}})])
    db.add_messages(conv.id, [("user", "again", {}), ("assistant", "yes", {})])
    reopened = Database(f"sqlite:///{tmp_path / 'sub' / 'm.db'}")
    rows = reopened.messages("t", conv.id)
    assert [(m.seq, m.role, m.content) for m in rows] == [
        (0, "user", "hi"), (1, "assistant", "hello"), (2, "user", "again"), (3, "assistant", "yes")]
    assert rows[1].meta == {"route": {"tool": None}}
    assert [m.content for m in reopened.history(conv.id, limit=2)] == ["again", "yes"]


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


def test_a_bad_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot open database"):
        Database("nosuchdialect://x")
