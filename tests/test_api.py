"""The developer API over real HTTP (uvicorn on 127.0.0.1): keys and scopes, tenants, uploads,
chat as server-sent events, conversations, tools, errors, metrics, a client that leaves
mid-stream. The LLM is the scripted fake; storage is a real SQLite file, then a real PostgreSQL
database: every test that stores anything (keys, conversations, uploads, usage, rate counts)
runs on both (``db_url``, ``module_db_url``)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from assistant.llm.fake import FakeBackend
from assistant.storage import Message
from assistant.storage.keys import ApiKey
from mentorly_app.web import create_app
from tests.conftest import new_database_url
from tests.support.api_tools import png
from tests.support.live_api import LiveServer, assert_error, make_runtime, serve


class SlowBackend(FakeBackend):
    """The scripted fake, optionally slow per streamed piece; records whether a stream was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0
        self.pieces = 0
        self.closed = threading.Event()

    def stream(self, messages: Any, **kwargs: Any) -> Iterator[Any]:
        inner = super().stream(messages, **kwargs)

        def pieces() -> Iterator[Any]:
            try:
                for chunk in inner:
                    if self.delay:
                        time.sleep(self.delay)
                    self.pieces += 1
                    yield chunk
            finally:
                self.closed.set()

        return pieces()


class Env:
    def __init__(self, server: LiveServer, app: Any, backend: FakeBackend) -> None:
        self.server, self.app, self.backend = server, app, backend
        self.url = server.url
        self.runtime = app.state.runtime
        keys = app.state.keys
        self.acme, _ = keys.create("acme", "chat,tools")
        self.beta, _ = keys.create("beta", "chat,tools")
        self.chat_only, _ = keys.create("acme", "chat")
        self.tools_only, _ = keys.create("acme", "tools")
        self.admin, _ = keys.create("acme", "admin")
        self.revoked, info = keys.create("acme", "chat,tools")
        keys.revoke(info.prefix)

    def h(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def chat_env(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Env]:
    backend = SlowBackend()
    runtime = make_runtime(tmp_path_factory.mktemp("api-chat"), backend=backend, database_url=module_db_url)
    server, app = serve(runtime)
    yield Env(server, app, backend)
    server.stop()


@pytest.fixture(scope="module")
def tools_env(tmp_path_factory: pytest.TempPathFactory, module_db_backend: str) -> Iterator[Env]:
    backend = FakeBackend()
    home = tmp_path_factory.mktemp("api-tools")
    runtime = make_runtime(home, backend=backend, tools=True, database_url=new_database_url(module_db_backend, home),
                           uploads={"max_bytes": 200_000, "max_pixels": 4_000_000})
    server, app = serve(runtime)
    yield Env(server, app, backend)
    server.stop()


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(data)
    return events


# -- keys and scopes --------------------------------------------------------------------------


CALLS = [("GET", "/api/tools", None), ("POST", "/api/chat", {"message": "hi"}), ("GET", "/v1/models", None),
         ("POST", "/v1/chat/completions", {"model": "mentorly", "messages": [{"role": "user", "content": "hi"}]}),
         ("GET", "/api/conversations/abc", None), ("POST", "/api/tools/halve", {"arguments": {"n": 2}})]


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
def test_every_api_call_needs_a_valid_unrevoked_key(chat_env: Env, method: str, path: str,
                                                    body: Any) -> None:
    url = chat_env.url + path
    r = httpx.request(method, url, json=body)
    assert_error(r, 401, "unauthorized", "Authorization: Bearer")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(httpx.request(method, url, json=body, headers={"Authorization": "Basic dTpw"}),
                 401, "unauthorized", "Bearer")
    assert_error(httpx.request(method, url, json=body, headers=chat_env.h("not-a-key")),
                 401, "unauthorized", "malformed")
    forged = chat_env.acme[:-4] + ("AAAA" if not chat_env.acme.endswith("AAAA") else "BBBB")
    assert_error(httpx.request(method, url, json=body, headers=chat_env.h(forged)),
                 401, "unauthorized", "not valid")
    assert_error(httpx.request(method, url, json=body, headers=chat_env.h(chat_env.revoked)),
                 401, "unauthorized", "revoked")


def test_health_needs_no_key(chat_env: Env) -> None:
    assert httpx.get(chat_env.url + "/healthz").json() == {"status": "ok", "tools": []}


def test_scopes_are_enforced(chat_env: Env) -> None:
    url = chat_env.url
    assert_error(httpx.get(url + "/api/tools", headers=chat_env.h(chat_env.chat_only)),
                 403, "forbidden", "'tools' scope")
    assert_error(httpx.post(url + "/api/chat", json={"message": "hi"}, headers=chat_env.h(chat_env.tools_only)),
                 403, "forbidden", "'chat' scope")
    assert_error(httpx.post(url + "/v1/chat/completions", headers=chat_env.h(chat_env.tools_only),
                            json={"model": "mentorly", "messages": [{"role": "user", "content": "hi"}]}),
                 403, "forbidden", "chat")
    assert httpx.get(url + "/api/tools", headers=chat_env.h(chat_env.tools_only)).status_code == 200
    assert httpx.get(url + "/v1/models", headers=chat_env.h(chat_env.chat_only)).status_code == 200
    for path in ("/api/tools", "/v1/models"):  # admin implies every scope
        assert httpx.get(url + path, headers=chat_env.h(chat_env.admin)).status_code == 200


def test_keys_are_printed_once_and_stored_only_as_hashes(tmp_path: Path, db_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.security import KeyStore
    from assistant.storage import shared_database
    from mentorly_app.cli import cli

    monkeypatch.setenv("MENTORLY_HOME", str(tmp_path))
    monkeypatch.setenv("MENTORLY_DATABASE_URL", db_url)
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--tenant", "school-1", "--scopes", "chat,knowledge",
                                  "--name", "lms"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("mk_") and "not shown again" in created.stderr
    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0 and key not in listed.output
    assert "school-1" in listed.output and "chat,knowledge" in listed.output and "active" in listed.output
    db = shared_database(db_url)
    with db.session() as s:
        row = s.scalars(select(ApiKey)).one()
        stored = " ".join(str(v) for v in vars(row).values())
    assert key not in stored and key.split("_", 2)[2] not in stored
    assert row.secret_hash == hashlib.sha256(key.encode()).hexdigest()
    principal = KeyStore(db).authenticate(key)
    assert (principal.tenant, principal.scopes) == ("school-1", ("chat", "knowledge"))
    revoked = runner.invoke(cli, ["keys", "revoke", row.prefix])
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    assert "revoked" in runner.invoke(cli, ["keys", "list"]).output
    bad = runner.invoke(cli, ["keys", "create", "--tenant", "x", "--scopes", "chat,root"])
    assert bad.exit_code == 1 and "unknown scope" in bad.output
    missing = runner.invoke(cli, ["keys", "revoke", "nope"])
    assert missing.exit_code == 1 and "no API key" in missing.output


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, db_url: str) -> None:
    runtime = make_runtime(tmp_path, database_url=db_url, api={"rate_limit_per_minute": 2})
    app = create_app(runtime, with_ui=False)
    first, _ = app.state.keys.create("acme", "tools")
    second, _ = app.state.keys.create("acme", "tools")
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/api/tools", headers={"Authorization": f"Bearer {first}"}).status_code == 200
        r = client.get("/api/tools", headers={"Authorization": f"Bearer {first}"})
        assert_error(r, 429, "rate_limited", "2 requests per minute")  # type: ignore[arg-type]
        assert 1 <= int(r.headers["retry-after"]) <= 90  # sliding window: up to 90 s for a limit of 2
        assert client.get("/api/tools", headers={"Authorization": f"Bearer {second}"}).status_code == 200


def test_local_ui_needs_a_key_when_configured(tmp_path: Path, db_url: str) -> None:
    runtime = make_runtime(tmp_path, database_url=db_url, api={"require_key_for_local_ui": True})
    app = create_app(runtime, with_ui=False)
    key, _ = app.state.keys.create("acme", "chat")
    with TestClient(app) as client:
        assert_error(client.get("/ui/"), 401, "unauthorized")  # type: ignore[arg-type]
        client.cookies.set("mentorly_key", key)
        assert client.get("/ui/").status_code == 404  # past the guard (no UI mounted in this test)
        assert client.get("/healthz").status_code == 200


# -- chat -------------------------------------------------------------------------------------


def test_chat_streams_typed_events_and_stores_the_turn(chat_env: Env) -> None:
    r = httpx.post(chat_env.url + "/api/chat", headers=chat_env.h(chat_env.acme),
                   json={"message": "What is photosynthesis?", "user": "student-7"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"text_delta"}
    done = events[-1]
    streamed = "".join(e["text"] for e in events if e["type"] == "text_delta")
    assert streamed == done["text"] == "(fake reply) You said: What is photosynthesis?"
    conv = httpx.get(f"{chat_env.url}/api/conversations/{done['conversation_id']}",
                     headers=chat_env.h(chat_env.acme)).json()
    assert [(m["role"], m["content"]) for m in conv["messages"]] == [
        ("user", "What is photosynthesis?"), ("assistant", done["text"])]
    assert conv["title"] == "What is photosynthesis?"


def test_chat_without_streaming_returns_the_result_and_continues_a_conversation(chat_env: Env) -> None:
    url, h = chat_env.url + "/api/chat", chat_env.h(chat_env.acme)
    chat_env.backend.add("Photosynthesis turns light into sugar.", "Chlorophyll absorbs the light.")
    first = httpx.post(url, headers=h, json={"message": "Explain photosynthesis", "stream": False}).json()
    assert first["text"] == "Photosynthesis turns light into sugar." and first["steps"] == []
    assert first["model"] == "fake-scripted" and first["usage"]["completion_tokens"] > 0
    second = httpx.post(url, headers=h, json={"message": "Which pigment?", "stream": False,
                                              "conversation_id": first["conversation_id"]}).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert second["text"] == "Chlorophyll absorbs the light."
    prompt = chat_env.backend.requests[-1].messages
    assert any(m["content"] == "Photosynthesis turns light into sugar." for m in prompt)  # history used
    conv = httpx.get(f"{chat_env.url}/api/conversations/{first['conversation_id']}", headers=h).json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]


def test_a_tenant_sees_only_its_own_conversations(chat_env: Env) -> None:
    url = chat_env.url
    done = httpx.post(url + "/api/chat", headers=chat_env.h(chat_env.acme),
                      json={"message": "private question", "stream": False}).json()
    cid = done["conversation_id"]
    assert_error(httpx.get(f"{url}/api/conversations/{cid}", headers=chat_env.h(chat_env.beta)),
                 404, "not_found", cid)
    assert_error(httpx.post(url + "/api/chat", headers=chat_env.h(chat_env.beta),
                            json={"message": "continue", "conversation_id": cid}), 404, "not_found")
    assert httpx.get(f"{url}/api/conversations/{cid}", headers=chat_env.h(chat_env.acme)).status_code == 200


@pytest.mark.parametrize(("body", "status", "error_type", "contains"), [
    ({"message": "   "}, 422, "invalid_input", "empty"),
    ({"message": "x" * 20_001}, 413, "payload_too_large", "limit"),
    ({"message": "hi", "conversation_id": "0123456789abcdef"}, 404, "not_found", "conversation"),
    ({"message": "hi", "uploads": ["AAAAAAAAAAAAAAAAAAAAAA"]}, 404, "not_found", "upload"),
    ({"message": 42}, 422, "invalid_input", "message"),
    ({"message": "hi", "colour": "red"}, 422, "invalid_input", "colour"),
    ({}, 422, "invalid_input", "empty"),
])
def test_chat_bad_input(chat_env: Env, body: dict[str, Any], status: int, error_type: str,
                        contains: str) -> None:
    r = httpx.post(chat_env.url + "/api/chat", headers=chat_env.h(chat_env.acme), json=body)
    assert_error(r, status, error_type, contains)


def test_malformed_json_unknown_routes_and_methods_use_the_error_shape(chat_env: Env) -> None:
    h = {**chat_env.h(chat_env.acme), "Content-Type": "application/json"}
    assert_error(httpx.post(chat_env.url + "/api/chat", headers=h, content=b'{"message": "hi"'),
                 422, "invalid_input", "not valid JSON")
    assert_error(httpx.get(chat_env.url + "/api/nothing-here", headers=h), 404, "not_found")
    assert_error(httpx.delete(chat_env.url + "/api/tools", headers=h), 405, "method_not_allowed")


def test_a_client_that_disconnects_mid_stream_cancels_the_turn(chat_env: Env) -> None:
    backend, db = chat_env.backend, chat_env.runtime.db
    long_answer = " ".join(f"word{i}" for i in range(200))
    backend.add(long_answer)
    backend.delay, backend.pieces = 0.02, 0
    backend.closed.clear()

    def stored_answers() -> int:
        with db.session() as s:
            return len(s.scalars(select(Message).where(Message.content == long_answer)).all())

    try:
        with httpx.Client(timeout=10) as client, client.stream(
                "POST", chat_env.url + "/api/chat", headers=chat_env.h(chat_env.acme),
                json={"message": "tell me a long story"}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data:") and "text_delta" in line:
                    break  # one piece received: leave
        assert backend.closed.wait(10), "the LLM stream was not closed after the client left"
        assert backend.pieces < 200, "the turn ran to the end although the client had left"
    finally:
        backend.delay = 0.0
    time.sleep(0.3)
    assert stored_answers() == 0  # nothing half-written
    with db.session() as s:
        users = s.scalars(select(Message).where(Message.content == "tell me a long story")).all()
    assert users == []
    # the server keeps serving, and a complete turn is stored
    ok = httpx.post(chat_env.url + "/api/chat", headers=chat_env.h(chat_env.acme),
                    json={"message": "still there?", "stream": False})
    assert ok.status_code == 200 and ok.json()["text"].endswith("still there?")


# -- uploads and tools ------------------------------------------------------------------------


def test_uploads_are_validated_and_owned_by_the_tenant(tools_env: Env) -> None:
    url, h = tools_env.url + "/api/uploads", tools_env.h(tools_env.acme)
    r = httpx.post(url, headers=h, files={"file": ("red.png", png(), "image/png")})
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["mime"], info["width"], info["height"]) == ("image/png", 64, 48)
    assert_error(httpx.post(url, headers=h, files={"file": ("notes.png", b"just some text\n" * 20, "image/png")}),
                 415, "unsupported_media_type", "not an image")
    assert_error(httpx.post(url, headers=h, files={"file": ("broken.png", png()[:60], "image/png")}),
                 422, "invalid_input", "broken.png")
    noise = Image.frombytes("RGB", (400, 400), bytes(range(256)) * 1875)
    big = io.BytesIO()
    noise.save(big, format="BMP")  # 480 kB, over the 200 kB limit
    assert_error(httpx.post(url, headers=h, files={"file": ("big.bmp", big.getvalue(), "image/bmp")}),
                 413, "payload_too_large", "limit")
    assert_error(httpx.post(url, headers=h, data={"x": "1"}), 422, "invalid_input", "file")
    # another tenant cannot use the id, in chat or in a direct tool call
    beta = tools_env.h(tools_env.beta)
    assert_error(httpx.post(tools_env.url + "/api/chat", headers=beta,
                            json={"message": "what is this?", "uploads": [info["id"]]}), 404, "not_found")
    assert_error(httpx.post(tools_env.url + "/api/tools/describe_image", headers=beta,
                            json={"uploads": [info["id"]]}), 404, "not_found")
    direct = httpx.post(tools_env.url + "/api/tools/describe_image", headers=h, json={"uploads": [info["id"]]})
    assert direct.json()["data"] == {"width": 64, "height": 48, "colour": "red"}


def test_chat_with_an_image_runs_the_tool_and_returns_steps_and_sources(tools_env: Env) -> None:
    h = tools_env.h(tools_env.acme)
    upload = httpx.post(tools_env.url + "/api/uploads", headers=h,
                        files={"file": ("blue.png", png((10, 20, 230)), "image/png")}).json()
    tools_env.backend.add({"tool_calls": [{"name": "describe_image", "arguments": {}}]},
                          "It is a small blue picture [1].")
    r = httpx.post(tools_env.url + "/api/chat", headers=h,
                   json={"message": "What is in this picture?", "uploads": [upload["id"]]})
    events = sse_events(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["step_started", "step_finished"] and kinds[-2:] == ["sources", "done"]
    finished = events[1]
    assert finished["ok"] and finished["result"]["colour"] == "blue"
    assert finished["provenance"]["model"] == "pixel-stats" and finished["provenance"]["tool_version"] == "0.3.0"
    done = events[-1]
    assert done["tools"] == ["describe_image"] and done["sources"][0]["title"] == "Colour chart"
    assert done["text"] == "It is a small blue picture [1]."


def test_tool_listing_and_direct_invocation(tools_env: Env) -> None:
    url, h = tools_env.url, tools_env.h(tools_env.tools_only)
    listed = {t["name"]: t for t in httpx.get(url + "/api/tools", headers=h).json()}
    assert set(listed) == {"word_count", "halve", "describe_image"}
    halve = listed["halve"]
    assert halve["version"] == "2.1.0" and "even integer" in halve["description"]
    assert halve["parameters"]["properties"]["n"]["type"] == "integer"
    assert halve["parameters"]["required"] == ["n"]
    ok = httpx.post(url + "/api/tools/halve", headers=h, json={"arguments": {"n": 10}}).json()
    assert ok["data"] == {"half": 5} and ok["summary"] == "10 / 2 = 5"
    assert ok["provenance"] == {"model": "arithmetic", "model_version": "1", "confidence": 1.0}
    assert httpx.post(url + "/api/tools/word_count", headers=h,
                      json={"arguments": {"text": "three short words"}}).json()["data"] == {"words": 3, "chars": 17}
    assert_error(httpx.post(url + "/api/tools/halve", headers=h, json={"arguments": {"n": 7}}),
                 422, "tool_error", "7 is odd")
    assert_error(httpx.post(url + "/api/tools/halve", headers=h, json={"arguments": {"n": "many"}}),
                 422, "invalid_input", "n:")
    assert_error(httpx.post(url + "/api/tools/halve", headers=h, json={"arguments": {"n": 2, "m": 1}}),
                 422, "invalid_input", "m:")
    assert_error(httpx.post(url + "/api/tools/nope", headers=h, json={"arguments": {}}),
                 404, "not_found", "no tool named 'nope'")
    assert_error(httpx.post(url + "/api/tools/describe_image", headers=h, json={}),
                 422, "tool_error", "attach an image")


def test_metrics_in_prometheus_text_format(tools_env: Env) -> None:
    h = tools_env.h(tools_env.acme)
    httpx.post(tools_env.url + "/api/tools/halve", headers=h, json={"arguments": {"n": 4}})
    httpx.post(tools_env.url + "/api/tools/halve", headers=h, json={"arguments": {"n": 3}})
    upload = httpx.post(tools_env.url + "/api/uploads", headers=h,
                        files={"file": ("g.png", png((0, 200, 0)), "image/png")}).json()
    tools_env.backend.add({"tool_calls": [{"name": "describe_image", "arguments": {}}]}, "Green.")
    before = len(tools_env.backend.requests)
    turn = httpx.post(tools_env.url + "/api/chat", headers=h,
                      json={"message": "describe", "uploads": [upload["id"]], "stream": False}).json()
    assert turn["text"] == "Green." and turn["tools"] == ["describe_image"]
    assert len(tools_env.backend.requests) == before + 2
    r = httpx.get(tools_env.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("mentorly_http_requests_total", method="POST", route="/api/tools/{name}", status="200") >= 1
    assert value("mentorly_http_requests_total", method="POST", route="/api/tools/{name}", status="422") >= 1
    assert value("mentorly_http_request_duration_seconds_count", method="POST", route="/api/tools/{name}") >= 2
    assert value("mentorly_tool_calls_total", tool="halve", outcome="ok", surface="api") >= 1
    assert value("mentorly_tool_calls_total", tool="halve", outcome="error", surface="api") >= 1
    assert value("mentorly_tool_calls_total", tool="describe_image", outcome="ok", surface="api") >= 1
    assert value("mentorly_llm_tokens_total", kind="completion") > 0
    assert value("mentorly_chat_turns_total", surface="api", outcome="ok") >= 1
    gate = tools_env.app.state.runtime.turn_gate  # the line, read at scrape time
    assert value("mentorly_chat_turns_capacity") == gate.active + gate.queue
    assert value("mentorly_chat_turns_running") == 0 and value("mentorly_chat_turns_waiting") == 0
    assert not any(name == "mentorly_http_requests_total" and ("route", "/api/nothing-here") in labels
                   for name, labels in samples)  # raw paths never become labels


def test_trivial_tools_run_inline_after_proving_cheap_and_slow_ones_go_back_to_threads() -> None:
    import anyio

    from assistant import ToolContext, tool
    from assistant.api.tools import ToolRunner

    delay = {"s": 0.0}

    @tool
    def maybe_slow(x: int) -> int:
        """Return x, sleeping first when told to."""
        time.sleep(delay["s"])
        return x

    # thresholds far from the timings, so a loaded CI machine cannot flip the outcome
    runner, context = ToolRunner(inline_s=0.05, streak=3), ToolContext(tenant="t", user="u")

    async def call() -> int:
        return (await runner.run(maybe_slow, {"x": 7}, context, timeout=5)).data

    threads: list[bool] = []
    for _ in range(5):
        threads.append(not runner.is_inline("maybe_slow"))
        assert anyio.run(call) == 7
    assert threads == [True, True, True, False, False]
    delay["s"] = 0.2  # the tool turns slow: one inline call, then back to threads
    assert anyio.run(call) == 7 and not runner.is_inline("maybe_slow")
    for _ in range(4):
        assert anyio.run(call) == 7
    assert not runner.is_inline("maybe_slow")


def test_revoking_through_the_store_ends_a_cached_key_at_once(db_url: str) -> None:
    from assistant.errors import Unauthorized
    from assistant.security import KeyStore
    from assistant.storage import Database

    store = KeyStore(Database(db_url))
    key, info = store.create("acme", ["tools"])
    assert store.authenticate(key).tenant == "acme"
    assert store.cached(key) is not None  # the hot path: the cache and one revocation check
    store.revoke(info.id)
    assert store.cached(key) is None
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate(key)


def test_stored_times_come_back_in_utc_on_every_database(db_url: str) -> None:
    """SQLite gives back naive datetimes, PostgreSQL aware ones in the server's time zone (here a
    server set to Shanghai time): conversations, keys and the audit log hand out aware UTC on
    both, the same instant that was written."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from assistant import audit
    from assistant.api.conversations import _load
    from assistant.security import KeyStore
    from assistant.security.widget_tokens import WidgetKeys
    from assistant.storage import Database

    db = Database(db_url)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execute(text(f"ALTER DATABASE \"{db.engine.url.database}\" SET timezone TO 'Asia/Shanghai'"))
            conn.commit()
        db.engine.dispose()  # new connections take the database's setting
        with db.engine.connect() as conn:
            assert conn.scalar(text("SHOW timezone")) == "Asia/Shanghai"
    written = datetime.now(UTC)
    keys, widget_keys = KeyStore(db), WidgetKeys(db)
    _, info = keys.create("acme", "chat")
    keys.revoke(info.prefix)
    widget_keys.create("acme", ["https://school.example"])
    audit.record(db, actor="cli:test", action=audit.KEY_CREATED, target=info.prefix, tenant="acme")
    conv = db.open_conversation("acme", db.ensure_user("acme", "ann"), None, "Times")
    db.add_messages(conv.id, [("user", "What time is it?", {})])

    class Holder:  # what ``_load`` reads of the runtime
        def __init__(self, database: Database) -> None:
            self.db = database

    loaded = _load(Holder(db), "acme", conv.id)  # type: ignore[arg-type]
    [key] = keys.list()
    [widget] = widget_keys.list()
    [entry] = audit.entries(db)
    times = [loaded.created_at, loaded.updated_at, loaded.messages[0].created_at, key.created_at,
             key.revoked_at, widget.created_at, entry.at]
    for t in times:
        assert t is not None and t.tzinfo is not None and t.utcoffset() == timedelta(0), t
        assert abs(t - written) < timedelta(minutes=5), (t, written)
    assert entry.to_dict()["at"].endswith("+00:00")
    body = json.loads(loaded.model_dump_json())
    assert body["created_at"].endswith("Z") and body["messages"][0]["created_at"].endswith("Z")
