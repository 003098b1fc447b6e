"""What a launched LTI page does after the launch (the launch itself is tested elsewhere): the
widget's full-page chat with the session token instead of a key, metered with surface ``lti``
and the course; course-first search with the platform's shared collections as the fallback;
the instructor's course API (documents, status, usage) and its refusals (a learner's session,
an expired or forged one, another course's collection, a deep-linking launch).

Sessions are opened directly with ``LtiSessions.open`` on a live server (uvicorn on 127.0.0.1)
with the knowledge plugin and the scripted LLM."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from assistant import ToolContext, ToolError, audit
from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.lti.courses import CourseInfo, ensure_course
from assistant.lti.sessions import LtiSessions
from assistant.runtime import Runtime, build_runtime
from assistant.storage.db import ensure_tenant
from assistant.storage.lti import LtiPlatform
from assistant.storage.usage import UsageRecord
from tests.support.api_tools import png
from tests.support.live_api import LiveServer, assert_error, serve
from tests.support.sse import done_of
from tools.knowledge_search.service import knowledge_base

UI = Path(__file__).resolve().parents[1] / "ui"
TENANT = "acme"
HANDBOOK = """# Physics 101 handbook

## Homework
Homework is due every Friday at 17:00. Late homework loses ten percent per day.

## Laboratory safety
Wear goggles in the laboratory at all times. Food and drinks are not allowed.
"""
CAMPUS = """# Campus guide

## Library
The university library opens at eight in the morning on weekdays and closes at ten at night.
"""
CHEMISTRY = "# Chemistry 201\n\n## Exams\nThe chemistry final exam is on the twelfth of June in hall B.\n"


class Env:
    def __init__(self, server: LiveServer, app: Any, runtime: Runtime, backend: FakeBackend) -> None:
        self.server, self.app, self.runtime, self.backend = server, app, runtime, backend
        self.url = server.url
        self.sessions: LtiSessions = app.state.lti_sessions
        with runtime.db.session() as s:
            ensure_tenant(s, TENANT)
            platform = LtiPlatform(tenant_id=TENANT, name="Moodle", issuer="https://moodle.example",
                                   client_id="c1", auth_login_url="https://moodle.example/auth",
                                   key_set_url="https://moodle.example/jwks", deployment_ids=["d1"],
                                   shared_collections=["campus", "no-such-collection"])
            s.add(platform)
            s.flush()
            self.platform_id = platform.id
        self.course = self.make_course("phys-101", "Physics 101")

    def make_course(self, context_id: str, title: str) -> CourseInfo:
        return ensure_course(self.runtime.db, tenant=TENANT, platform_id=self.platform_id,
                             context_id=context_id, title=title)

    def open(self, course: CourseInfo | None, *, instructor: bool = False, user: str = "sub-1",
             name: str = "Ann Lee", message_type: str = "LtiResourceLinkRequest",
             sessions: LtiSessions | None = None) -> str:
        roles = ["http://purl.imsglobal.org/vocab/lis/v2/membership#" +
                 ("Instructor" if instructor else "Learner")]
        return (sessions or self.sessions).open(
            tenant=TENANT, platform_id=self.platform_id, user=f"lti:{self.platform_id}:{user}",
            display_name=name, roles=roles, instructor=instructor, locale="en",
            message_type=message_type, deployment_id="d1", course=course)

    def ingest(self, collection: str, name: str, text: str) -> None:
        folder = self.runtime.settings.home / "docs" / collection
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
        report = knowledge_base(self.runtime.settings).ingest([folder / name], TENANT, collection)
        assert report.count("failed") == 0

    def widget(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, content=json.dumps(body), timeout=60,
                          headers={"Content-Type": "text/plain;charset=UTF-8"})

    def course_api(self, method: str, path: str, token: str | None, *,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.request(method, self.url + "/lti/api/course" + path, headers={**auth, **(headers or {})},
                             timeout=60, **kwargs)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home: Path = tmp_path_factory.mktemp("lti-course")
    backend = FakeBackend()
    runtime = build_runtime(load_settings(home=home, plugins=["tools.knowledge_search"],
                                          llm={"backend": "fake", "tool_calling": "native"}),
                            backend=backend)
    server, app = serve(runtime)
    e = Env(server, app, runtime, backend)
    e.ingest("campus", "campus.md", CAMPUS)
    yield e
    server.stop()




# -- the chat ------------------------------------------------------------------------------------

def test_a_learners_chat_searches_the_course_and_is_metered_as_lti(env: Env) -> None:
    env.ingest(env.course.collection, "handbook.md", HANDBOOK)
    other = env.make_course("chem-201", "Chemistry 201")
    env.ingest(other.collection, "chem.md", CHEMISTRY)
    token = env.open(env.course, user="learner-chat", name="Li Lei")
    r = env.widget("/widget/api/session", {"session": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"tenant": TENANT, "anonymous": False, "name": "Li Lei",
                        "course": env.course.collection, "conversation_id": None, "messages": []}
    # the model names another course's collection, and so does the body: neither is searched
    env.backend.add({"tool_calls": [{"name": "knowledge_search", "arguments": {
        "query": "When is the homework due?", "collection": other.collection}}]})
    r = env.widget("/widget/api/chat", {"session": token, "message": "When is the homework due?",
                                        "collection": other.collection})
    assert r.status_code == 200, r.text
    done = done_of(r.text)
    assert done["tools"] == ["knowledge_search"] and done["sources"]
    assert {s["metadata"]["collection"] for s in done["sources"]} == {env.course.collection}
    assert "Friday" in done["text"]
    with env.runtime.db.session() as s:
        rows = s.scalars(select(UsageRecord).where(UsageRecord.user == f"lti:{env.platform_id}:learner-chat")).all()
    assert [(u.surface, u.course, u.key, u.turns, u.tool_calls) for u in rows] == \
        [("lti", env.course.collection, f"lti:{env.platform_id}", 1, 1)]
    # the history follows the learner to their next launch (a new session)
    again = env.widget("/widget/api/session", {"session": env.open(env.course, user="learner-chat")}).json()
    assert again["conversation_id"] == done["conversation_id"]
    assert [m["role"] for m in again["messages"]] == ["user", "assistant"]


def test_a_learners_conversations_stay_with_their_course(env: Env) -> None:
    """The same learner in two courses: each course's page restores that course's conversation,
    and a conversation of one course is not continued from the other's page."""
    other = env.make_course("hist-105", "History 105")
    first = env.open(env.course, user="learner-two-courses")
    env.backend.add("Welcome to physics.")
    r = env.widget("/widget/api/chat", {"session": first, "message": "hello physics"})
    assert r.status_code == 200, r.text
    physics = done_of(r.text)["conversation_id"]
    second = env.open(other, user="learner-two-courses")
    assert env.widget("/widget/api/session", {"session": second}).json()["conversation_id"] is None
    r = env.widget("/widget/api/chat", {"session": second, "message": "hello history",
                                        "conversation_id": physics})
    assert_error(r, 404, "not_found", physics)
    env.backend.add("Welcome to history.")
    r = env.widget("/widget/api/chat", {"session": second, "message": "hello history"})
    history = done_of(r.text)["conversation_id"]
    assert history != physics
    assert env.widget("/widget/api/session", {"session": first}).json()["conversation_id"] == physics
    assert env.widget("/widget/api/session", {"session": second}).json()["conversation_id"] == history


def test_a_launched_page_uploads_an_image_with_its_session(env: Env) -> None:
    token = env.open(env.course, user="learner-upload")
    r = httpx.post(env.url + "/widget/api/uploads", data={"session": token},
                   files={"file": ("a.png", png(), "image/png")}, timeout=60)
    assert r.status_code == 201 and r.json()["width"] == 64
    r = httpx.post(env.url + "/widget/api/uploads", data={"session": "lti_" + "x" * 43},
                   files={"file": ("a.png", png(), "image/png")}, timeout=60)
    assert r.status_code == 401


def test_a_deep_linking_session_cannot_chat(env: Env) -> None:
    token = env.open(env.course, instructor=True, message_type="LtiDeepLinkingRequest")
    for path in ("/widget/api/session", "/widget/api/chat"):
        r = env.widget(path, {"session": token, "message": "hello"})
        assert_error(r, 403, "forbidden", "open it from the course")


def test_bad_sessions_and_mixed_credentials_are_refused(env: Env) -> None:
    expired = env.open(env.course, sessions=LtiSessions(env.runtime.db, ttl_s=-1))
    forged = "lti_" + secrets.token_urlsafe(32)
    for token, words in ((expired, "expired"), (forged, "not valid"), ("lti_short", "malformed")):
        assert_error(env.widget("/widget/api/chat", {"session": token, "message": "hi"}), 401,
                     "unauthorized", words)
    assert_error(env.widget("/widget/api/session", {"session": env.open(env.course), "key": "pk_" + "a" * 24}),
                 422, "invalid_input", "not both")
    assert_error(env.widget("/widget/api/session", {}), 422, "invalid_input", "key")


# -- course-first search -------------------------------------------------------------------------

def test_the_course_is_searched_first_and_the_shared_collections_after(env: Env) -> None:
    from tools.knowledge_search.tool import knowledge_search

    def ask(query: str, collection: str | None, args: dict[str, Any] | None = None) -> Any:
        context = ToolContext(tenant=TENANT, user="u", settings=env.runtime.settings, message=query,
                              collection=collection, fallback_collections=("campus", "no-such-collection"))
        return knowledge_search.invoke({"query": query, **(args or {})}, context)

    fresh = env.make_course("bio-101", "Biology 101")  # no document yet: no collection either
    library = ask("When does the library open?", fresh.collection)
    assert library.sources and {s.metadata["collection"] for s in library.sources} == {"campus"}
    assert "shared collection 'campus'" in library.summary and "(collection 'campus')" in library.summary
    env.ingest(fresh.collection, "handbook.md", HANDBOOK)
    own = ask("When is the homework due?", fresh.collection, {"collection": "campus"})
    assert own.sources and {s.metadata["collection"] for s in own.sources} == {fresh.collection}
    assert own.summary.startswith(f"{len(own.sources)} relevant passage(s) from collection '{fresh.collection}'")
    fallback = ask("When does the library open?", fresh.collection)  # nothing relevant in the course
    assert {s.metadata["collection"] for s in fallback.sources} == {"campus"}
    nothing = ask("Tell me a joke about cats", fresh.collection)
    assert nothing.sources == [] and "or the shared collection 'campus'" in nothing.summary
    no_course = ask("When does the library open?", None, {"collection": fresh.collection})
    assert {s.metadata["collection"] for s in no_course.sources} == {"campus"}  # never the argument's
    # without fallbacks a missing collection is still an error (a page naming a wrong one)
    missing = ToolContext(tenant=TENANT, user="u", settings=env.runtime.settings, collection="nope")
    with pytest.raises(ToolError, match="nope"):
        knowledge_search.invoke({"query": "When does the library open?"}, missing)


# -- the instructor's course API -----------------------------------------------------------------

def test_an_instructor_uploads_lists_checks_and_removes_course_documents(env: Env) -> None:
    course = env.make_course("hist-110", "History 110")
    other = env.make_course("art-120", "Art 120")
    env.ingest(other.collection, "art.md", "# Art 120\n\nThe studio opens at nine.\n")
    token = env.open(course, instructor=True, user="teacher-1", name="Ms Wang")
    status = env.course_api("GET", "/status", token)
    assert status.status_code == 200, status.text
    assert status.json()["exists"] is False and status.json()["documents"] == 0
    assert status.json()["title"] == "History 110" and ".docx" in status.json()["accepts"]
    assert env.course_api("GET", "/documents", token).json() == {"collection": course.collection, "documents": []}
    # a body or a query naming another course's collection is ignored
    r = env.course_api("POST", "/documents", token, params={"collection": other.collection},
                       data={"collection": other.collection},
                       files={"file": ("handbook.md", HANDBOOK.encode(), "text/markdown")})
    assert r.status_code == 200, r.text
    assert r.json()["collection"] == course.collection and r.json()["counts"]["added"] == 1
    docs = env.course_api("GET", "/documents", token).json()["documents"]
    assert [d["source"] for d in docs] == ["handbook.md"] and docs[0]["title"] == "Physics 101 handbook"
    status = env.course_api("GET", "/status", token).json()
    assert status["exists"] and status["documents"] == 1 and status["chunks"] >= 1
    assert status["in_sync"] and status["index_vectors"] == status["chunks"]
    assert_error(env.course_api("POST", "/documents", token,
                                files={"file": ("tool.exe", b"MZ\x90\x00", "application/octet-stream")}),
                 415, "unsupported_media_type")
    assert_error(env.course_api("POST", "/documents", token, content=b"{}",
                                headers={"Content-Type": "application/json"}), 422, "invalid_input")
    # another course's document cannot be removed through this course
    assert_error(env.course_api("DELETE", "/documents/art.md", token), 404, "not_found")
    assert [d["source"] for d in knowledge_base(env.runtime.settings).documents(TENANT, other.collection)] == ["art.md"]
    r = env.course_api("DELETE", "/documents/handbook.md", token, params={"collection": other.collection})
    assert r.status_code == 200 and r.json()["collection"] == course.collection and r.json()["chunks"] >= 1
    assert env.course_api("GET", "/documents", token).json()["documents"] == []
    entries = [e for e in audit.entries(env.runtime.db, tenant=TENANT)
               if e.actor == f"lti:{env.platform_id}:teacher-1"]
    assert {(e.action, e.target) for e in entries} == {
        (audit.DOCUMENT_UPLOADED, f"{course.collection}/handbook.md"),
        (audit.DOCUMENT_DELETED, f"{course.collection}/handbook.md")}


def test_an_oversized_course_upload_is_refused_as_it_streams(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_KNOWLEDGE__MAX_FILE_MB", "1")  # read on every upload
    token = env.open(env.course, instructor=True, user="teacher-3")
    big = b"# Big\n\n" + b"word " * 260_000  # over the 1 MB allowed
    assert_error(env.course_api("POST", "/documents", token, files={"file": ("big.md", big, "text/markdown")}),
                 413, "payload_too_large")
    boundary = "lti-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n").encode()

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield head
        for _ in range(20):
            yield big[:100_000]
        yield f"\r\n--{boundary}--\r\n".encode()

    r = env.course_api("POST", "/documents", token, content=chunked(),
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_error(r, 413, "payload_too_large", "1.0 MB")
    assert "big.md" not in [d["source"] for d in env.course_api("GET", "/documents", token).json()["documents"]]


def test_an_instructor_sees_the_courses_usage_only(env: Env) -> None:
    course = env.make_course("math-130", "Math 130")
    other = env.make_course("math-140", "Math 140")
    meter = env.app.state.meter
    for user, turns, launches in (("a", 3, 2), ("b", 1, 1)):
        uid = f"lti:{env.platform_id}:{user}"
        env.runtime.db.ensure_user(TENANT, uid, f"Learner {user.upper()}")
        meter.record(tenant=TENANT, user=uid, surface="lti", course=course.collection, launches=launches)
        meter.record(tenant=TENANT, user=uid, surface="lti", course=course.collection, turns=turns,
                     tool_calls=turns, prompt_tokens=10 * turns, completion_tokens=5 * turns)
    meter.record(tenant=TENANT, user="someone", surface="lti", course=other.collection, turns=9, launches=1)
    r = env.course_api("GET", "/usage", env.open(course, instructor=True, user="teacher-2"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["course"] == {"title": "Math 130", "collection": course.collection}
    assert body["totals"] == {"turns": 4, "tool_calls": 4, "prompt_tokens": 40, "completion_tokens": 20,
                              "tokens": 60, "launches": 3, "learners": 2}
    assert [(p["name"], p["turns"], p["launches"], p["tokens"]) for p in body["learners"]] == \
        [("Learner A", 3, 2, 45), ("Learner B", 1, 1, 15)]


def test_the_course_api_refuses_learners_and_bad_sessions(env: Env) -> None:
    learner = env.open(env.course, user="learner-9")
    calls = [("GET", "/status"), ("GET", "/documents"), ("GET", "/usage"),
             ("DELETE", "/documents/handbook.md")]
    for method, path in calls:
        assert_error(env.course_api(method, path, learner), 403, "forbidden", "instructors")
    assert_error(env.course_api("POST", "/documents", learner,
                                files={"file": ("x.md", b"# x\n\ntext\n", "text/markdown")}), 403, "forbidden")
    no_course = env.open(None, instructor=True)
    assert_error(env.course_api("GET", "/status", no_course), 403, "forbidden", "without a course")
    expired = env.open(env.course, instructor=True, sessions=LtiSessions(env.runtime.db, ttl_s=-1))
    forged = "lti_" + secrets.token_urlsafe(32)
    for token in (None, expired, forged, "not-a-session"):
        for method, path in calls:
            assert_error(env.course_api(method, path, token), 401, "unauthorized")
    r = httpx.get(env.url + "/lti/api/course/status", headers={"Authorization": f"Basic {forged}"})
    assert_error(r, 401, "unauthorized")
    # the widget key's world is not the course API's: an API key is not a session
    api_key, _ = env.app.state.keys.create(TENANT, "admin")
    assert_error(env.course_api("GET", "/usage", api_key), 401, "unauthorized")


# -- the page ------------------------------------------------------------------------------------

def test_the_page_and_its_files(env: Env) -> None:
    page = (UI / "lti" / "page.html").read_text(encoding="utf-8")
    for name in ("lang", "title", "session", "course_title", "user_name", "role", "collection"):
        assert "{{" + name + "}}" in page
    assert re.search(r'<script src="/widget\.js" data-mode="page"[^>]*data-session="\{\{session\}\}"', page)
    assert "<script>" not in page and "style=" not in page  # no inline code: a strict CSP may apply
    js = httpx.get(env.url + "/lti/course.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert "Authorization" in js.text and ".innerHTML" not in js.text and "document.cookie" not in js.text
    css = httpx.get(env.url + "/lti/course.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    widget = httpx.get(env.url + "/widget.js").text
    assert 'dataset.mode === "page"' in widget and ".innerHTML" not in widget
    assert httpx.get(env.url + "/lti/page.html").status_code == 404  # a template, not a file to serve
