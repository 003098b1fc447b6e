"""A new user's first requests arriving together: no unique-constraint error, no 500, one
user row. Real concurrency: 80 threads on a real database, and 80 simultaneous HTTP requests
to uvicorn on 127.0.0.1 (the widget's session, ``/api/chat`` and ``/v1/chat/completions`` with
the scripted fake LLM). Every test that touches the database runs on a SQLite file and on
PostgreSQL (``db_url``, ``module_db_url``)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from assistant.security.keys import KeyStore
from assistant.security.widget_tokens import sign_token
from assistant.storage import Database, Tenant, User
from assistant.storage.db import insert_missing
from tests.support.live_api import LiveServer, make_runtime, serve

N = 80
SITE = "https://school.example"


def together(n: int, work: Callable[[int], Any]) -> list[BaseException]:
    """Run ``work(i)`` in ``n`` threads released at the same moment; the exceptions raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001  (collected and asserted on)
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def count_users(db: Database, tenant: str, external_id: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(User)
                            .where(User.tenant_id == tenant, User.external_id == external_id)) or 0)


def test_80_threads_create_one_user_and_one_tenant(db_url: str) -> None:
    db = Database(db_url)
    keys = KeyStore(db)
    tenant = f"new-{uuid.uuid4().hex[:8]}"
    ids: set[str] = set()

    def first_request(i: int) -> None:
        if i % 10 == 0:  # a key created for the new tenant at the same moment
            keys.create(tenant, "chat")
        else:
            ids.add(db.ensure_user(tenant, "learner-1", "Ann").id)

    assert together(N, first_request) == []
    assert count_users(db, tenant, "learner-1") == 1 and len(ids) == 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Tenant).where(Tenant.id == tenant)) == 1
        assert s.scalar(select(User.display_name).where(User.tenant_id == tenant)) == "Ann"


def test_the_insert_skips_conflicts_in_sqlite_and_postgresql_sql() -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    for insert, dialect in ((sqlite_insert, sqlite.dialect()), (pg_insert, postgresql.dialect())):
        statement = insert(User).values(tenant_id="t", external_id="u").on_conflict_do_nothing(
            index_elements=["tenant_id", "external_id"])
        assert "ON CONFLICT (tenant_id, external_id) DO NOTHING" in str(statement.compile(dialect=dialect))


def test_insert_missing_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    for _ in range(3):
        with db.session() as s:
            insert_missing(s, Tenant, {"id": "t", "name": "t"}, ("id",))
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 1


# -- over HTTP, on a real server --------------------------------------------------------------


class Site:
    def __init__(self, server: LiveServer, app: Any) -> None:
        self.server, self.app, self.url = server, app, server.url
        self.key, _ = app.state.keys.create("acme", "chat")
        info, self.secret = app.state.widget_keys.create("acme", [SITE])
        self.widget_key = info.key

    def users(self, external_id: str) -> int:
        return count_users(self.app.state.runtime.db, "acme", external_id)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Site]:
    # All N turns run at once (the turn gate would otherwise line most of them up, and a line
    # takes the simultaneity out of the race this file is about).
    server, app = serve(make_runtime(tmp_path_factory.mktemp("first-requests"), database_url=module_db_url,
                                     server={"max_active_turns": N, "turn_queue": N}))
    yield Site(server, app)
    server.stop()


async def _all_at_once(requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=N, max_keepalive_connections=N)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return list(await asyncio.gather(*(client.post(url, **kw) for url, kw in requests)))


def simultaneous(url: str, n: int = N, **kwargs: Any) -> list[httpx.Response]:
    return asyncio.run(_all_at_once([(url, kwargs)] * n))


def failures(responses: list[httpx.Response]) -> list[str]:
    return [f"{r.status_code}: {r.text[:200]}" for r in responses if r.status_code != 200]


def test_80_simultaneous_widget_sessions_of_a_new_learner(site: Site) -> None:
    learner = f"learner-{uuid.uuid4().hex[:8]}"
    token = sign_token(site.secret, tenant="acme", user=learner, name="Li Lei")
    responses = simultaneous(site.url + "/widget/api/session", content=f'{{"key": "{site.widget_key}", '
                             f'"token": "{token}"}}', headers={"Origin": SITE, "Content-Type": "text/plain"})
    assert failures(responses) == []
    assert all(r.headers["access-control-allow-origin"] == SITE for r in responses)
    assert site.users(learner) == 1


# A turn does more before it creates the user than the widget's session does, which spreads the
# requests out: one burst hit the old check-then-insert about every other time, three nearly always.
ROUNDS = 3


@pytest.mark.parametrize(("path", "body"), [
    ("/api/chat", lambda user: {"message": "hello", "user": user, "stream": False}),
    ("/v1/chat/completions", lambda user: {"model": "mentorly", "user": user,
                                           "messages": [{"role": "user", "content": "hello"}]}),
], ids=["api-chat", "v1-completions"])
def test_80_simultaneous_first_turns_of_a_new_user(site: Site, path: str,
                                                   body: Callable[[str], dict[str, Any]]) -> None:
    for _ in range(ROUNDS):
        user = f"user-{uuid.uuid4().hex[:8]}"
        responses = simultaneous(site.url + path, json=body(user),
                                 headers={"Authorization": f"Bearer {site.key}"})
        assert failures(responses) == []
        assert site.users(user) == 1


# -- the same race elsewhere: a new collection, a retried event batch -------------------------


def test_first_ingests_into_a_new_collection_at_once_all_succeed(tmp_path: Path, db_url: str) -> None:
    from assistant.config import load_settings
    from tools.knowledge_search.service import knowledge_base

    settings = load_settings(home=tmp_path / "home", database_url=db_url, knowledge={"load_demo": False})
    kb = knowledge_base(settings)
    for i in range(8):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / f"note{i}.md").write_text(f"# Note {i}\n\nRoom R{i} opens at 9.\n")
    errors = together(8, lambda i: kb.ingest([tmp_path / f"d{i}"], "acme", "brand-new"))
    assert errors == []
    [row] = [c for c in kb.collections("acme") if c["name"] == "brand-new"]
    assert row["documents"] == 8


def test_identical_event_batches_at_once_store_each_event_once(tmp_path: Path, db_url: str) -> None:
    from assistant.config import load_settings
    from tools.recommendation.catalog import ImportReport, import_catalog, parse_row
    from tools.recommendation.events import count_events, record_events

    settings = load_settings(home=tmp_path / "home", database_url=db_url)
    resource = parse_row({"id": "r1", "title": "Algebra basics", "subject": "mathematics",
                          "level": "beginner"})
    import_catalog([resource], ImportReport(), tenant="acme", settings=settings)
    batch = [{"user": "u1", "resource": "r1", "kind": "view", "timestamp": 1_700_000_000 + i}
             for i in range(50)]
    errors = together(8, lambda _i: record_events(batch, tenant="acme", settings=settings))
    assert errors == []
    assert count_events("acme", settings) == 50
