"""LTI 1.3 end to end (#17), all through the simulated platform and HTTP: an instructor launches
into course C and uploads the course's syllabus with the launched page's session; a learner
launches into C and asks, and the knowledge search answers from C's collection, citing the
syllabus; a learner of course D asks the same and gets nothing of C's. Then metering and audit
per tenant, course and user, and the instructor's view of the course's usage.

Then the flood guard of the routes anyone may call (``/lti/login``, ``/lti/launch``,
``/lti/deep-link``): over ``[lti] requests_per_minute_per_ip`` a client address gets a 429 page
with ``Retry-After`` and nothing else happens for it (no state row, no launcher, one audit row
per address and minute), while other addresses go on. Clients are told apart by
``X-Forwarded-For``, which uvicorn takes from a proxy on 127.0.0.1 (here, the test's client).

Live servers (uvicorn on 127.0.0.1) on SQLite with the scripted LLM; the launch tests cover
PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from assistant import audit
from assistant.config import LtiSettings, load_settings
from assistant.errors import RateLimited
from assistant.llm.fake import FakeBackend
from assistant.lti.flood import MAX_AUDITED_PER_MINUTE, FloodGuard, client_key
from assistant.runtime import Runtime, build_runtime
from assistant.security.ratelimit import make_limiter
from assistant.storage.lti import LtiState
from assistant.storage.rate_counts import RateCount
from assistant.storage.usage import UsageRecord
from tests.support.live_api import LiveServer, make_runtime, serve
from tests.support.lti_platform import SimulatedPlatform
from tests.support.sse import events

TENANT = "school"
SESSION_RE = re.compile(r"lti_[A-Za-z0-9_-]{43}")
SYLLABUS = """# Astronomy 210 syllabus

## Observatory night
The observatory night is on Thursday the ninth of October at the Zeiss dome, from eight to eleven.

## Grading
The final project counts for forty percent of the grade.
"""
QUESTION = "When is the observatory night?"
FACT = "Zeiss dome"
COURSE_C = ("astro-210", "Astronomy 210")
COURSE_D = ("geo-101", "Geology 101")



def session_of(page: httpx.Response) -> str:
    """The session token the launched page carries (one, however often it appears)."""
    assert page.status_code == 200, page.text[:500]
    tokens = set(SESSION_RE.findall(page.text))
    assert len(tokens) == 1, page.text[:500]
    return tokens.pop()


@dataclass
class Flow:
    """What the end-to-end flow did and answered, for the tests below to check."""

    server: LiveServer
    runtime: Runtime
    platform: SimulatedPlatform
    client: httpx.Client
    pages: dict[str, httpx.Response] = field(default_factory=dict)  # by sub
    sessions: dict[str, str] = field(default_factory=dict)  # by sub
    status_before: dict[str, Any] = field(default_factory=dict)
    upload: dict[str, Any] = field(default_factory=dict)
    status_after: dict[str, Any] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by sub: the done event
    course_usage: dict[str, Any] = field(default_factory=dict)

    def user(self, sub: str) -> str:
        return f"lti:{self.platform.platform_id[:8]}:{sub}"

    def launch(self, sub: str, role: str, context: tuple[str, str], name: str) -> str:
        page = self.platform.launch(self.client, role=role, sub=sub, context=context, name=name)
        self.pages[sub] = page
        self.sessions[sub] = session_of(page)
        return self.sessions[sub]

    def course_api(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        r = self.client.request(method, "/lti/api/course" + path, headers={"Authorization": f"Bearer {token}"},
                                **kw)
        assert r.status_code == 200, r.text
        return r

    def ask(self, sub: str, backend: FakeBackend) -> None:
        # the scripted model calls the knowledge tool with the question only: which collection
        # it searches comes from the launch
        backend.add({"tool_calls": [{"name": "knowledge_search", "arguments": {"query": QUESTION}}]})
        r = self.client.post("/widget/api/chat", headers={"Content-Type": "text/plain;charset=UTF-8"},
                             content=json.dumps({"session": self.sessions[sub], "message": QUESTION}))
        assert r.status_code == 200, r.text
        done = [data for kind, data in events(r.text) if kind == "done"]
        assert len(done) == 1, r.text[-2000:]
        self.answers[sub] = done[0]

    def usage(self, sub: str) -> list[tuple[str, str, str, str, int, int, int]]:
        """The user's usage rows: (tenant, surface, course, key, turns, tool calls, launches)."""
        with self.runtime.db.session() as s:
            rows = s.scalars(select(UsageRecord).where(UsageRecord.user == self.user(sub))).all()
        return sorted((r.tenant_id, r.surface, r.course, r.key, r.turns, r.tool_calls, r.launches) for r in rows)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    home: Path = tmp_path_factory.mktemp("lti-flow")
    backend = FakeBackend()
    runtime = build_runtime(load_settings(home=home, plugins=["tools.knowledge_search"],
                                          llm={"backend": "fake", "tool_calling": "native"}),
                            backend=backend)
    server, _app = serve(runtime)
    runtime.settings.lti.public_url = server.url  # the launch URL platforms are given
    platform = SimulatedPlatform()
    platform.register(runtime.db, TENANT)
    client = httpx.Client(base_url=server.url, timeout=60)
    f = Flow(server, runtime, platform, client)
    try:
        # the instructor of C: the course page's status, the syllabus uploaded, the list
        teacher = f.launch("prof-c", "instructor", COURSE_C, "Prof Vega")
        f.status_before = f.course_api("GET", "/status", teacher).json()
        f.upload = f.course_api("POST", "/documents", teacher, files={
            "file": ("syllabus.md", SYLLABUS.encode(), "text/markdown")}).json()
        f.status_after = f.course_api("GET", "/status", teacher).json()
        f.documents = f.course_api("GET", "/documents", teacher).json()
        # a learner of C and a learner of D ask the same question
        f.launch("stu-c", "learner", COURSE_C, "Lin Mei")
        f.launch("stu-d", "learner", COURSE_D, "Dan Roe")
        f.ask("stu-c", backend)
        f.ask("stu-d", backend)
        f.course_usage = f.course_api("GET", "/usage", teacher).json()
        yield f
    finally:
        client.close()
        platform.stop()
        server.stop()


def test_the_instructors_launch_uploads_the_syllabus_to_the_courses_collection(flow: Flow) -> None:
    page = flow.pages["prof-c"]
    assert 'data-role="instructor"' in page.text and "Astronomy 210" in page.text
    collection = flow.upload["collection"]
    assert collection.startswith("lti-") and f'"{collection}"' in page.text  # the page names it
    assert flow.status_before["exists"] is False and flow.status_before["documents"] == 0
    assert flow.status_before["title"] == "Astronomy 210"
    assert flow.upload["counts"]["added"] == 1 and [f["source"] for f in flow.upload["files"]] == ["syllabus.md"]
    status = flow.status_after
    assert status["exists"] and status["documents"] == 1 and status["chunks"] >= 1 and status["in_sync"]
    assert flow.documents["collection"] == collection
    assert [(d["source"], d["title"]) for d in flow.documents["documents"]] == [
        ("syllabus.md", "Astronomy 210 syllabus")]


def test_the_learner_of_the_course_is_answered_from_its_collection(flow: Flow) -> None:
    collection = flow.upload["collection"]
    page = flow.pages["stu-c"]
    assert 'data-role="learner"' in page.text and f'"{collection}"' in page.text
    done = flow.answers["stu-c"]
    assert done["tools"] == ["knowledge_search"] and done["route"]["tool"] == "knowledge_search"
    assert done["sources"], done
    assert {(s["metadata"]["collection"], s["uri"]) for s in done["sources"]} == {(collection, "syllabus.md")}
    assert all(s["title"].startswith("Astronomy 210 syllabus") for s in done["sources"])
    assert FACT in done["text"], done["text"]
    assert any(FACT in e["text"] for e in done["grounding"]["evidence"])


def test_a_learner_of_another_course_does_not_get_its_documents(flow: Flow) -> None:
    collection = flow.upload["collection"]
    other = flow.sessions["stu-d"]
    assert collection not in flow.pages["stu-d"].text and other != flow.sessions["stu-c"]
    done = flow.answers["stu-d"]
    assert done["tools"] == ["knowledge_search"]  # it searched: its own course, which has nothing
    assert all(s["metadata"]["collection"] != collection for s in done["sources"])
    assert done["sources"] == [] and FACT not in done["text"] and "ninth of October" not in done["text"]
    # nor can the learner reach the instructor's course API
    r = flow.client.get("/lti/api/course/documents", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 403


def test_launches_turns_and_tool_calls_are_metered_per_tenant_course_and_user(flow: Flow) -> None:
    c, key = flow.upload["collection"], f"lti:{flow.platform.platform_id}"
    d = next(row[2] for row in flow.usage("stu-d"))
    assert d.startswith("lti-") and d != c
    # (tenant, surface, course, key, turns, tool calls, launches)
    assert flow.usage("prof-c") == [(TENANT, "lti", c, key, 0, 0, 1)]  # the upload is no turn
    assert flow.usage("stu-c") == [(TENANT, "lti", c, key, 0, 0, 1), (TENANT, "lti", c, key, 1, 1, 0)]
    assert flow.usage("stu-d") == [(TENANT, "lti", d, key, 0, 0, 1), (TENANT, "lti", d, key, 1, 1, 0)]


def test_the_launches_and_the_upload_are_audited(flow: Flow) -> None:
    c, platform_id = flow.upload["collection"], flow.platform.platform_id
    rows = audit.entries(flow.runtime.db, tenant=TENANT, limit=1000)
    launches = sorted((e.target, e.actor, e.details["role"], e.details["context_id"], e.details["course"])
                      for e in rows if e.action == audit.LTI_LAUNCH)
    d = next(row[2] for row in flow.usage("stu-d"))
    actor = f"lti:{platform_id}"
    assert launches == [(flow.user("prof-c"), actor, "instructor", "astro-210", c),
                        (flow.user("stu-c"), actor, "learner", "astro-210", c),
                        (flow.user("stu-d"), actor, "learner", "geo-101", d)]
    uploads = [e for e in rows if e.action == audit.DOCUMENT_UPLOADED]
    assert [(e.actor, e.target, e.details["via"], e.details["platform"]) for e in uploads] == [
        (flow.user("prof-c"), f"{c}/syllabus.md", "lti", platform_id)]
    assert not [e for e in rows if e.action == audit.LTI_LAUNCH_REFUSED]


def test_the_instructor_sees_the_learner_in_the_courses_usage(flow: Flow) -> None:
    body = flow.course_usage
    assert body["course"] == {"title": "Astronomy 210", "collection": flow.upload["collection"]}
    assert {k: body["totals"][k] for k in ("turns", "tool_calls", "launches", "learners")} == {
        "turns": 1, "tool_calls": 1, "launches": 2, "learners": 2}
    people = [(p["user"], p["name"], p["turns"], p["tool_calls"], p["launches"]) for p in body["learners"]]
    assert people == [(flow.user("stu-c"), "Lin Mei", 1, 1, 1), (flow.user("prof-c"), "Prof Vega", 0, 0, 1)]
    assert flow.user("stu-d") not in {p["user"] for p in body["learners"]}  # another course's learner


# -- the flood guard -------------------------------------------------------------------------------

LIMIT = 3


@dataclass
class Guarded:
    server: LiveServer
    app: Any
    runtime: Runtime
    platform: SimulatedPlatform

    def client(self, address: str, **headers: str) -> httpx.Client:
        """A client whose requests reach the app as from ``address`` (via X-Forwarded-For)."""
        return httpx.Client(base_url=self.server.url, timeout=30, headers={"X-Forwarded-For": address, **headers})

    def counts(self) -> tuple[int, int]:
        """State rows and audit rows so far."""
        with self.runtime.db.session() as s:
            states = int(s.scalar(select(func.count()).select_from(LtiState)) or 0)
        return states, len(audit.entries(self.runtime.db, limit=10_000))

    def throttled(self, address: str) -> list[audit.AuditItem]:
        return [e for e in audit.entries(self.runtime.db, action=audit.LTI_LAUNCH_REFUSED, limit=10_000)
                if e.details.get("reason") == "rate_limited" and e.details.get("client") == address]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    runtime = make_runtime(tmp_path_factory.mktemp("lti-flood"), lti={"requests_per_minute_per_ip": LIMIT})
    server, app = serve(runtime)
    runtime.settings.lti.public_url = server.url
    platform = SimulatedPlatform()
    platform.register(runtime.db, TENANT)
    yield Guarded(server, app, runtime, platform)
    platform.stop()
    server.stop()


def clear_of_a_new_minute(margin_s: float = 5.0) -> None:
    """Wait for the next minute when this one ends within ``margin_s``: the limiter counts per
    wall-clock minute, and a test's burst that straddles two would see its counts move."""
    left = 60.0 - time.time() % 60.0
    if left < margin_s:
        time.sleep(left + 0.05)


def assert_busy(r: httpx.Response, *, lang: str = "en") -> int:
    """``r`` is the flood guard's page; its ``Retry-After``."""
    assert r.status_code == 429, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and "script-src 'none'" in r.headers["content-security-policy"]
    assert "set-cookie" not in r.headers and "location" not in r.headers
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 120
    assert f'<html lang="{lang}"' in r.text and "<code>rate_limited</code>" in r.text
    if lang == "zh":
        assert "请求过多" in r.text and f"请等待 {retry} 秒" in r.text and f"超过 {LIMIT} 次" in r.text
    else:
        assert "Too many requests from your network" in r.text
        assert f"Wait {retry} seconds" in r.text and f"More than {LIMIT} requests" in r.text
    return retry


def test_an_address_over_the_limit_gets_a_429_page_and_writes_nothing(guarded: Guarded) -> None:
    assert guarded.app.state.lti_flood.per_minute == LIMIT  # from the settings
    address = "203.0.113.7"
    clear_of_a_new_minute()
    with guarded.client(address) as client:
        # within the limit: a login (a state row), a launch URL opened directly and a deep-link
        # form without a session (each refused with its page and an audit row)
        assert guarded.platform.login(client, login_hint="flooder").status_code == 302
        assert client.get("/lti/launch").status_code == 400
        assert client.post("/lti/deep-link", data={"session": ""}).status_code == 401
        states, audits = guarded.counts()
        # over it: every anonymous route, even a launch that would verify, answers 429 at once
        login = guarded.platform.login(guarded.client("198.51.100.50"), login_hint="valid")  # another address
        query = parse_qs(urlsplit(login.headers["location"]).query)
        state, nonce = query["state"][0], query["nonce"][0]
        token = guarded.platform.id_token(nonce, sub="valid", target_link_uri=f"{guarded.server.url}/lti/launch")
        states += 1  # that login's state
        retries = []
        for _ in range(5):
            retries.append(assert_busy(guarded.platform.login(client, login_hint="flooder")))
            retries.append(assert_busy(guarded.platform.login(client, login_hint="flooder", method="GET")))
            retries.append(assert_busy(client.post("/lti/launch", data={"id_token": token, "state": state})))
            retries.append(assert_busy(client.get("/lti/launch")))
            retries.append(assert_busy(client.post("/lti/deep-link", data={"session": "lti_x"})))
        assert max(retries) - min(retries) <= 2  # the same wait, give or take the seconds passed
    assert guarded.counts() == (states, audits + 1)  # no state row; one audit row for the flood
    [row] = guarded.throttled(address)
    assert (row.action, row.actor, row.tenant, row.details["step"]) == (
        audit.LTI_LAUNCH_REFUSED, f"ip:{address}", "", "login")
    assert row.details["limit_per_minute"] == LIMIT and 1 <= row.details["retry_after_s"] <= 120
    # the counts are the shared limiter's (the database here, Redis when configured)
    with guarded.runtime.db.session() as s:
        keys = set(s.scalars(select(RateCount.key)).all())
    assert f"lti:{address}" in keys
    # another address is not held back: its launch, with the state the flood could not use
    with guarded.client("198.51.100.50") as other:
        r = guarded.platform.post_launch(other, token, state)
        assert r.status_code == 200 and SESSION_RE.search(r.text), r.text[:300]


def test_the_page_speaks_the_browsers_language(guarded: Guarded) -> None:
    clear_of_a_new_minute()
    with guarded.client("203.0.113.8", **{"Accept-Language": "zh-CN,zh;q=0.9"}) as client:
        for _ in range(LIMIT):
            assert client.get("/lti/launch").status_code == 400
        assert_busy(client.get("/lti/launch"), lang="zh")


def test_an_ipv6_client_counts_by_its_64(guarded: Guarded) -> None:
    clear_of_a_new_minute()
    for n in range(LIMIT):
        with guarded.client(f"2001:db8:7:1::{n + 1:x}") as client:
            assert guarded.platform.login(client, login_hint=f"v6-{n}").status_code == 302
    with guarded.client("2001:db8:7:1:ffff:1:2:3") as same_64:
        assert_busy(same_64.get("/lti/launch"))
    with guarded.client("2001:db8:7:2::1") as next_64:
        assert guarded.platform.login(next_64, login_hint="v6-next").status_code == 302
    assert len(guarded.throttled("2001:db8:7:1::/64")) == 1


@pytest.mark.parametrize(("host", "key"), [
    ("192.0.2.10", "192.0.2.10"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.10", "192.0.2.10"),  # an IPv4 client of a dual-stack socket
    ("fe80::1%eth0", "fe80::/64"),
    ("testclient", "testclient"),  # not an address (Starlette's test client): as given
    ("", "unknown"),
    (None, "unknown"),
])
def test_client_keys(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_audit_rows_are_one_per_address_and_minute_and_capped(guarded: Guarded) -> None:
    now = [600_030.0]  # the middle of a minute

    def clock() -> float:
        return now[0]

    guard = FloodGuard(make_limiter(1, db=None, scope="lti-test", clock=clock), guarded.runtime.db, clock=clock)
    addresses = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(MAX_AUDITED_PER_MINUTE + 20)]
    _, before = guarded.counts()

    async def flood() -> list[RateLimited | None]:
        return [await guard.admit(a, "login") for _ in range(3) for a in addresses]

    results = anyio.run(flood)
    assert results[:len(addresses)] == [None] * len(addresses)  # each address's first request
    assert all(isinstance(r, RateLimited) for r in results[len(addresses):])
    assert guarded.counts()[1] == before + MAX_AUDITED_PER_MINUTE  # not one per refused request
    now[0] += 60  # the next minute: an address still over its limit is recorded once more
    assert isinstance(anyio.run(guard.admit, addresses[0], "launch"), RateLimited)
    assert guarded.counts()[1] == before + MAX_AUDITED_PER_MINUTE + 1


def test_the_setting() -> None:
    assert LtiSettings().requests_per_minute_per_ip == 600
    assert LtiSettings(requests_per_minute_per_ip=0).requests_per_minute_per_ip == 0  # no limit
    with pytest.raises(ValidationError):
        LtiSettings(requests_per_minute_per_ip=-1)
    off = FloodGuard(make_limiter(0, db=None, scope="lti"), None)
    assert all(anyio.run(off.admit, "192.0.2.1", "login") is None for _ in range(500))
