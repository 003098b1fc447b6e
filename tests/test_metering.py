"""Usage metering: one row per completed turn (agent observer) and per direct tool call,
reports per tenant/user/tool with CSV, and ``GET /api/usage`` for admin keys. Every test that
stores usage runs on SQLite and on PostgreSQL (``db_url``, ``module_db_url``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from assistant.errors import InvalidInput
from assistant.llm.fake import FakeBackend
from assistant.metering import Meter, estimate_embedded_tokens, parse_time, to_csv
from assistant.storage import Database
from assistant.storage.usage import UsageRecord
from tests.support.api_tools import png
from tests.support.live_api import LiveServer, make_runtime, serve


@pytest.fixture
def meter(db_url: str) -> Meter:
    return Meter(Database(db_url))


def test_report_groups_sums_and_windows(meter: Meter) -> None:
    meter.record(tenant="a", user="ann", tool="", turns=1, prompt_tokens=10, completion_tokens=5, compute_ms=3.5)
    meter.record(tenant="a", user="ann", tool="describe_image", turns=1, prompt_tokens=20, completion_tokens=1,
                 tool_calls=1, image_megapixels=0.5, embedded_tokens=4)
    meter.record(tenant="a", user="bob", tool="describe_image", tool_calls=1, image_megapixels=1.25)
    meter.record(tenant="b", user="ann", tool="halve", tool_calls=1)
    by_tenant = {r.group: r for r in meter.report(group_by="tenant")}
    assert by_tenant["a"].prompt_tokens == 30 and by_tenant["a"].completion_tokens == 6
    assert by_tenant["a"].tool_calls == 2 and by_tenant["a"].image_megapixels == 1.75
    assert by_tenant["a"].turns == 2 and by_tenant["b"].tool_calls == 1
    by_user = {r.group: r.tool_calls for r in meter.report(group_by="user")}
    assert by_user == {"a/ann": 1, "a/bob": 1, "b/ann": 1}  # the same user id in two tenants stays apart
    by_tool = {r.group: r.tool_calls for r in meter.report(group_by="tool", tenant="a")}
    assert by_tool == {"(none)": 0, "describe_image": 2}
    future = datetime.now(UTC) + timedelta(days=1)
    assert meter.report(start=future) == []
    assert len(meter.report(end=future, group_by="tenant")) == 2
    table = list(csv.reader(io.StringIO(to_csv(meter.report(group_by="tool"), "tool"))))
    assert table[0][:3] == ["tool", "turns", "prompt_tokens"] and len(table) == 4
    assert meter.totals_since(datetime.now(UTC) - timedelta(hours=1), tenant="a", user="ann") == (36, 1)


def test_bad_report_requests_are_refused(meter: Meter) -> None:
    with pytest.raises(InvalidInput, match="group_by"):
        meter.report(group_by="week")
    with pytest.raises(InvalidInput, match="after"):
        meter.report(start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="ISO"):
        parse_time("last tuesday", "from")
    assert parse_time("2026-11-01", "from") == datetime(2026, 11, 1, tzinfo=UTC)
    assert estimate_embedded_tokens(0) == 0 and estimate_embedded_tokens(30) == 10


class Env:
    def __init__(self, server: LiveServer, app: object, backend: FakeBackend) -> None:
        self.server, self.app, self.backend, self.url = server, app, backend, server.url
        store = app.state.keys  # type: ignore[attr-defined]
        self.admin, self.admin_info = store.create("acme", "admin")
        self.chat, self.chat_info = store.create("acme", "chat,tools")
        self.beta, _ = store.create("beta", "admin")

    def h(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def rows(self) -> list[UsageRecord]:
        with self.app.state.runtime.db.session() as s:  # type: ignore[attr-defined]
            return list(s.scalars(select(UsageRecord).order_by(UsageRecord.at)).all())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Env]:
    backend = FakeBackend()
    runtime = make_runtime(tmp_path_factory.mktemp("metering"), backend=backend, tools=True,
                           database_url=module_db_url)
    server, app = serve(runtime)
    yield Env(server, app, backend)
    server.stop()


def test_turns_and_direct_tool_calls_are_recorded_once(env: Env) -> None:
    env.backend.add("", "Hello Ann.")
    r = httpx.post(env.url + "/api/chat", headers=env.h(env.chat), timeout=60,
                   json={"message": "hello there", "user": "ann", "stream": False})
    assert r.status_code == 200, r.text
    upload = httpx.post(env.url + "/api/uploads", headers=env.h(env.chat),
                        files={"file": ("p.png", png(size=(1000, 500)), "image/png")}).json()
    env.backend.add({"tool_calls": [{"name": "describe_image", "arguments": {}}]}, "Red.")
    r = httpx.post(env.url + "/api/chat", headers=env.h(env.chat), timeout=60,
                   json={"message": "What is in this picture?", "user": "ann", "uploads": [upload["id"]],
                         "stream": False})
    assert r.status_code == 200 and r.json()["tools"] == ["describe_image"]
    direct = httpx.post(env.url + "/api/tools/describe_image", headers=env.h(env.chat), json={"uploads": [upload["id"]]})
    assert direct.status_code == 200
    env.backend.add({"error": "model crashed"})
    failed = httpx.post(env.url + "/api/chat", headers=env.h(env.chat), timeout=60,
                        json={"message": "this turn fails", "user": "ann", "stream": False})
    assert failed.status_code >= 500  # a failed turn is not billed
    rows = env.rows()
    assert [(r.surface, r.tool, r.turns, r.tool_calls) for r in rows] == \
        [("api", "", 1, 0), ("api", "describe_image", 1, 1), ("tool", "describe_image", 0, 1)]
    chat_turn, image_turn, tool_call = rows
    assert chat_turn.key == env.chat_info.prefix and chat_turn.user == "ann" and chat_turn.tenant_id == "acme"
    assert chat_turn.prompt_tokens > 0 and chat_turn.completion_tokens > 0 and chat_turn.compute_ms > 0
    assert chat_turn.embedded_tokens == estimate_embedded_tokens(len("hello there"))
    assert image_turn.image_megapixels == 0.5 and tool_call.image_megapixels == 0.5
    assert tool_call.key == env.chat_info.prefix


def test_usage_endpoint_json_csv_scopes_and_tenants(env: Env) -> None:
    assert httpx.get(env.url + "/api/usage", headers=env.h(env.chat)).status_code == 403
    r = httpx.get(env.url + "/api/usage", headers=env.h(env.admin), params={"group_by": "tool"})
    assert r.status_code == 200
    tools = {row["group"]: row for row in r.json()["rows"]}
    assert tools["describe_image"]["tool_calls"] >= 2
    r = httpx.get(env.url + "/api/usage", headers=env.h(env.admin),
                  params={"group_by": "user", "format": "csv", "from": "2000-01-01"})
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0][0] == "user" and any(row[0] == "acme/ann" for row in table[1:])
    assert httpx.get(env.url + "/api/usage", headers=env.h(env.beta)).json()["rows"] == []  # other tenant
    bad = httpx.get(env.url + "/api/usage", headers=env.h(env.admin), params={"from": "yesterday"})
    assert bad.status_code == 422 and "ISO" in bad.json()["error"]["message"]
    assert httpx.get(env.url + "/api/usage", headers=env.h(env.admin),
                     params={"group_by": "week"}).status_code == 422
    by_course = httpx.get(env.url + "/api/usage", headers=env.h(env.admin), params={"group_by": "course"})
    assert by_course.status_code == 200  # use outside an LTI course is the course ""
    assert [row["group"] for row in by_course.json()["rows"]] == [""]
