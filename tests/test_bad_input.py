"""Bad input on every surface is refused with a 4xx (never a 5xx) in the one error shape, with a
message that names the problem (the field, or the limit), and no traceback anywhere: the HTTP
API, the widget, uploads, documents and the command line.

In-process (``TestClient``); the CLI through click's runner, plus two real processes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from assistant.api.bodies import MAX_JSON_DEPTH, check_json, json_depth
from assistant.config import load_settings
from assistant.errors import InvalidInput
from assistant.llm.fake import FakeBackend
from assistant.runtime import build_runtime
from mentorly_app.cli import cli
from mentorly_app.web import create_app
from tests.conftest import REPO_ROOT
from tests.support.api_tools import add_all, png

SITE = "https://school.example"
EVIL = "https://evil.example"
DEEP = b"[" * 100_000 + b"]" * 100_000
JSON = "application/json"
NDJSON = "application/x-ndjson"
UPLOAD_LIMIT = 200_000


def deep_in(before: bytes, after: bytes) -> bytes:
    return before + DEEP + after


def docx(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (no Content-Length)."""
    for _ in range(total // size):
        yield b"0" * size


class Env:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = TestClient(app, raise_server_exceptions=False)
        keys = app.state.keys
        self.keys = {"chat": keys.create("acme", "chat,tools,knowledge")[0],
                     "admin": keys.create("acme", "admin")[0]}
        info, self.secret = app.state.widget_keys.create("acme", [SITE], anonymous=True)
        self.widget_key = info.key

    def request(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {self.keys[key]}"
        return self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = load_settings(home=tmp_path_factory.mktemp("bad-input"),
                             plugins=["tools.recommendation", "tools.knowledge_search"],
                             llm={"backend": "fake", "tool_calling": "native"},
                             uploads={"max_bytes": UPLOAD_LIMIT, "max_pixels": 4_000_000},
                             server={"cors_origins": [SITE]})
    app = create_app(build_runtime(settings, backend=FakeBackend(), configure=add_all), with_ui=False)
    e = Env(app)
    yield e
    e.client.close()


def check_refusal(r: Any, status: int | None, fragment: str, cors: str | None = None) -> dict[str, Any]:
    """A 4xx (exactly ``status`` unless None) in the one shape, naming ``fragment``, no traceback."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if status is not None:
        assert r.status_code == status, r.text[:500]
    assert "traceback" not in r.text.lower()
    body = r.json()
    assert set(body) == {"error"} and {"type", "message"} <= set(body["error"]), body
    assert fragment.lower() in body["error"]["message"].lower(), body
    if cors is not None:
        assert r.headers.get("access-control-allow-origin") == cors, dict(r.headers)
    return body["error"]  # type: ignore[no-any-return]


def raw(data: bytes, content_type: str = JSON) -> dict[str, Any]:
    return {"content": data, "headers": {"Content-Type": content_type}}


def file(name: str, data: bytes) -> dict[str, Any]:
    return {"files": {"file": (name, data, "application/octet-stream")}}


EVENT = {"user": "u", "resource": "r", "kind": "view"}
V1 = {"model": "mentorly", "messages": [{"role": "user", "content": "hi"}]}

# (id, method, path, key, request, status, what the message must name)
API_CASES: list[tuple[str, str, str, str | None, dict[str, Any], int, str]] = [
    # unpaired UTF-16 surrogates (escaped, or as UTF-8 bytes), named by where they are
    ("chat-surrogate", "POST", "/api/chat", "chat", raw(b'{"message": "\\ud800", "stream": false}'), 422,
     "unpaired UTF-16 surrogate at message"),
    ("chat-stream-surrogate", "POST", "/api/chat", "chat", raw(b'{"message": "a\\ud800b"}'), 422,
     "surrogate at message"),
    ("chat-low-surrogate-user", "POST", "/api/chat", "chat", raw(b'{"message": "hi", "user": "\\udfff"}'),
     422, "surrogate at user"),
    ("chat-utf8-surrogate", "POST", "/api/chat", "chat",
     raw('{"message": "\ud800"}'.encode("utf-8", "surrogatepass")), 422, "surrogate at message"),
    ("v1-surrogate", "POST", "/v1/chat/completions", "chat",
     raw(b'{"model": "mentorly", "messages": [{"role": "user", "content": "\\ud800"}]}'), 422,
     "surrogate at messages[0].content"),
    ("v1-part-surrogate", "POST", "/v1/chat/completions", "chat",
     raw(b'{"model": "mentorly", "messages": [{"role": "user", "content": [{"type": "text", '
         b'"text": "\\ud83d"}]}]}'), 422, "surrogate at messages[0].content[0].text"),
    ("tool-surrogate", "POST", "/api/tools/word_count", "chat", raw(b'{"arguments": {"text": "\\ud800"}}'),
     422, "surrogate at arguments.text"),
    ("tool-key-surrogate", "POST", "/api/tools/word_count", "chat",
     raw(b'{"arguments": {"te\\ud800xt": "x"}}'), 422, "surrogate at arguments["),
    ("catalog-surrogate", "POST", "/api/catalog", "admin",
     raw(b'[{"id": "a", "title": "\\ud800", "subject": "maths", "level": "beginner"}]'), 422,
     "surrogate at [0].title"),
    ("catalog-jsonl-surrogate", "POST", "/api/catalog", "admin",
     raw(b'{"id": "a", "title": "ok"}\n{"id": "b\\udc00"}\n', NDJSON), 422, "surrogate at line 2, id"),
    ("catalog-file-surrogate", "POST", "/api/catalog", "admin", file("c.json", b'[{"id": "\\ud800"}]'), 422,
     "surrogate at [0].id"),
    ("events-surrogate", "POST", "/api/events", "chat",
     raw(b'{"user": "\\ud800", "resource": "r", "kind": "view"}'), 422, "surrogate at user"),
    ("search-surrogate", "POST", "/api/knowledge/search", "chat", raw(b'{"query": "\\ud800"}'), 422,
     "surrogate at query"),
    # nesting past the limit (100,000 levels, and one level over)
    ("chat-deep", "POST", "/api/chat", "chat", raw(DEEP), 422, f"nested deeper than {MAX_JSON_DEPTH} levels"),
    ("chat-deep-field", "POST", "/api/chat", "chat", raw(deep_in(b'{"message": ', b"}")), 422,
     "nested deeper than 64"),
    ("chat-65-levels", "POST", "/api/chat", "chat", raw(b"[" * 65 + b"]" * 65), 422, "deeper than 64"),
    ("v1-deep", "POST", "/v1/chat/completions", "chat", raw(deep_in(b'{"model": "mentorly", "messages": ', b"}")),
     422, "deeper than 64"),
    ("tool-deep", "POST", "/api/tools/word_count", "chat", raw(deep_in(b'{"arguments": {"text": ', b"}}")),
     422, "deeper than 64"),
    ("catalog-deep", "POST", "/api/catalog", "admin", raw(DEEP), 422, "deeper than 64"),
    ("catalog-deep-jsonl", "POST", "/api/catalog", "admin", raw(DEEP, NDJSON), 422, "deeper than 64"),
    ("catalog-deep-jsonl-line-2", "POST", "/api/catalog", "admin",
     raw(b'{"id": "a", "title": "unclosed\n' + DEEP + b"\n", NDJSON), 422, "deeper than 64"),
    ("catalog-deep-file", "POST", "/api/catalog", "admin", file("c.json", DEEP), 422,
     "the catalog is JSON nested deeper than 64"),
    ("catalog-deep-file-jsonl", "POST", "/api/catalog", "admin", file("c.jsonl", DEEP), 422, "deeper than 64"),
    ("events-deep", "POST", "/api/events", "chat", raw(DEEP), 422, "deeper than 64"),
    ("search-deep", "POST", "/api/knowledge/search", "chat", raw(DEEP), 422, "deeper than 64"),
    # the body itself: type, presence, syntax, size
    ("chat-text-plain", "POST", "/api/chat", "chat", raw(b'{"message": "hi"}', "text/plain"), 422,
     "Content-Type: application/json"),
    ("chat-form", "POST", "/api/chat", "chat", {"data": {"message": "hi"}}, 422, "must be JSON"),
    ("chat-no-body", "POST", "/api/chat", "chat", {}, 422, "request body is missing"),
    ("chat-not-json", "POST", "/api/chat", "chat", raw(b'{"message": '), 422, "not valid JSON"),
    ("chat-json-over-limit", "POST", "/api/chat", "chat",
     {"chunked": 33 * 1024 * 1024, "headers": {"Content-Type": JSON}}, 413,
     "request body exceeded the limit of 32.0 MB"),
    # fields: each message names the field and its limit
    ("chat-message-type", "POST", "/api/chat", "chat", {"json": {"message": 5}}, 422, "message: "),
    ("chat-too-many-uploads", "POST", "/api/chat", "chat", {"json": {"message": "hi", "uploads": ["a"] * 9}},
     422, "uploads: at most 8 items, got 9"),
    ("chat-unknown-field", "POST", "/api/chat", "chat", {"json": {"message": "hi", "temperature": 1}}, 422,
     "temperature: unknown field"),
    ("chat-conversation-id", "POST", "/api/chat", "chat", {"json": {"message": "hi", "conversation_id": "../x"}},
     422, "conversation_id"),
    ("chat-long-collection", "POST", "/api/chat", "chat", {"json": {"message": "hi", "collection": "c" * 101}},
     422, "collection: at most 100 characters"),
    ("v1-no-messages", "POST", "/v1/chat/completions", "chat", {"json": {**V1, "messages": []}}, 422,
     "messages: at least 1 item"),
    ("v1-bad-role", "POST", "/v1/chat/completions", "chat",
     {"json": {**V1, "messages": [{"role": "robot", "content": "hi"}]}}, 422, "messages[0].role"),
    ("v1-content-type", "POST", "/v1/chat/completions", "chat",
     {"json": {**V1, "messages": [{"role": "user", "content": 5}]}}, 422, "messages[0].content"),
    ("v1-long-user", "POST", "/v1/chat/completions", "chat", {"json": {**V1, "user": "u" * 201}}, 422,
     "user: at most 200 characters"),
    ("v1-client-tools", "POST", "/v1/chat/completions", "chat", {"json": {**V1, "tools": [{"type": "function"}]}},
     422, "client-side tools"),
    ("v1-image-url", "POST", "/v1/chat/completions", "chat", {"json": {**V1, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}]}]}}, 422, "data: URL"),
    ("v1-unknown-model", "POST", "/v1/chat/completions", "chat", {"json": {**V1, "model": "gpt-9"}}, 404,
     "model 'gpt-9'"),
    ("tool-bad-argument", "POST", "/api/tools/halve", "chat", {"json": {"arguments": {"n": "x"}}}, 422, "n: "),
    ("tool-missing-argument", "POST", "/api/tools/halve", "chat", {"json": {"arguments": {}}}, 422, "n: "),
    ("tool-unknown-field", "POST", "/api/tools/halve", "chat", {"json": {"arguments": {"n": 2}, "x": 1}}, 422,
     "x: unknown field"),
    ("tool-unknown", "POST", "/api/tools/no_such_tool", "chat", {"json": {"arguments": {}}}, 404,
     "no_such_tool"),
    ("events-10001", "POST", "/api/events", "chat", {"json": [EVENT] * 10_001}, 422,
     "at most 10000 events per request, got 10001"),
    ("events-batch-10001", "POST", "/api/events", "chat", {"json": {"events": [EVENT] * 10_001}}, 422,
     "at most 10000 events per request, got 10001"),
    ("events-missing-kind", "POST", "/api/events", "chat", {"json": {"user": "u", "resource": "r"}}, 422,
     "kind: required"),
    ("events-list-item", "POST", "/api/events", "chat", {"json": [EVENT, {"resource": "r", "kind": "view"}]},
     422, "events[1].user: required"),
    ("events-scalar", "POST", "/api/events", "chat", {"json": 5}, 422, "one event object, a list of events"),
    ("events-long-user", "POST", "/api/events", "chat", {"json": {**EVENT, "user": "u" * 201}}, 422,
     "user: at most 200 characters"),
    ("catalog-text-plain", "POST", "/api/catalog", "admin", raw(b"[]", "text/plain"), 415,
     "Content-Type 'text/plain'"),
    ("catalog-empty", "POST", "/api/catalog", "admin", raw(b"  "), 422, "catalog is empty"),
    ("catalog-not-utf8", "POST", "/api/catalog", "admin", raw(b"id,title\n\xff\xfe,x\n", "text/csv"), 415,
     "not UTF-8"),
    ("catalog-file-type", "POST", "/api/catalog", "admin", file("c.xml", b"<x/>"), 415, "c.xml"),
    ("catalog-query-limit", "GET", "/api/catalog?limit=0", "chat", {}, 422, "query parameter limit"),
    ("recommendations-k", "GET", "/api/recommendations?user=u&k=0", "chat", {}, 422, "query parameter k"),
    ("search-empty-query", "POST", "/api/knowledge/search", "chat", {"json": {"query": ""}}, 422,
     "query: at least 1 character"),
    ("search-k", "POST", "/api/knowledge/search", "chat", {"json": {"query": "x", "k": 0}}, 422, "k: "),
    # image uploads
    ("upload-not-image", "POST", "/api/uploads", "chat", file("a.png", b"hello"), 415, "not an image"),
    ("upload-empty", "POST", "/api/uploads", "chat", file("a.png", b""), 422, "empty"),
    ("upload-truncated", "POST", "/api/uploads", "chat", file("a.png", png()[:80]), 422, "'a.png'"),
    ("upload-pixels", "POST", "/api/uploads", "chat", file("a.png", png(size=(3000, 2000))), 413,
     "over the limit of 4,000,000"),
    ("upload-one-byte-over", "POST", "/api/uploads", "chat", file("a.png", b"\x89PNG" + b"0" * UPLOAD_LIMIT),
     413, f"exceeded the upload limit of {UPLOAD_LIMIT:,} bytes"),
    ("upload-chunked-50mb", "POST", "/api/uploads", "chat",
     {"chunked": 50 * 1024 * 1024, "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
     413, f"the upload exceeded the limit of {UPLOAD_LIMIT:,} bytes"),
    ("upload-json", "POST", "/api/uploads", "chat", {"json": {"file": "a.png"}}, 422, "file: required"),
    # documents for the knowledge base (the loaders are being hardened in parallel)
    ("doc-malformed-docx", "POST", "/api/knowledge/c1/documents", "chat",
     file("a.docx", docx({"word/document.xml": "<w:document><w:body><w:p>unclosed"})), None, "a.docx"),
    ("doc-docx-not-zip", "POST", "/api/knowledge/c1/documents", "chat", file("b.docx", b"plain text"), 415,
     "not a DOCX"),
    ("doc-docx-no-document", "POST", "/api/knowledge/c1/documents", "chat",
     file("c.docx", docx({"[Content_Types].xml": "<Types/>"})), 415, "word/document.xml"),
    ("doc-pdf-not-pdf", "POST", "/api/knowledge/c1/documents", "chat", file("d.pdf", b"hello, not a PDF"), 415,
     "not a PDF"),
    ("doc-pdf-damaged", "POST", "/api/knowledge/c1/documents", "chat",
     file("e.pdf", b"%PDF-1.4\n1 0 obj garbage"), None, "e.pdf"),
    ("doc-empty", "POST", "/api/knowledge/c1/documents", "chat", file("f.md", b""), 422, "empty"),
    ("doc-binary-txt", "POST", "/api/knowledge/c1/documents", "chat", file("g.txt", bytes(range(256)) * 8), 415,
     "binary"),
    ("doc-unknown-type", "POST", "/api/knowledge/c1/documents", "chat", file("h.exe", b"MZ\x90"), 415,
     "unsupported document type"),
]


@pytest.mark.parametrize(("method", "path", "key", "request_kwargs", "status", "fragment"),
                         [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_bad_api_input_is_a_clear_4xx(env: Env, method: str, path: str, key: str | None,
                                      request_kwargs: dict[str, Any], status: int | None, fragment: str) -> None:
    kwargs = dict(request_kwargs)
    if "chunked" in kwargs:
        kwargs["content"] = chunks(kwargs.pop("chunked"))
    check_refusal(env.request(method, path, key, **kwargs), status, fragment)


def test_a_chunked_upload_over_the_limit_claims_no_size(env: Env) -> None:
    r = env.request("POST", "/api/uploads", "chat", content=chunks(50 * 1024 * 1024),
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    message = check_refusal(r, 413, "exceeded")["message"]
    assert " is " not in message and "MB, over" not in message, message


# -- the widget: no API key, every answer readable cross-origin -------------------------------


def wbody(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


# (id, path, body or files, origin, status, what the message must name)
WIDGET_CASES: list[tuple[str, str, Any, str, int, str]] = [
    ("session-deep", "/widget/api/session", DEEP, EVIL, 422, "nested deeper than 64"),
    ("chat-deep", "/widget/api/chat", deep_in(b'{"key": "pk_x", "message": ', b"}"), SITE, 422, "deeper than 64"),
    ("session-surrogate", "/widget/api/session", b'{"key": "pk_\\ud800"}', EVIL, 422, "surrogate at key"),
    ("chat-surrogate", "/widget/api/chat", b'{"key": "k", "message": "\\ud800"}', SITE, 422,
     "surrogate at message"),
    ("session-not-json", "/widget/api/session", b"{not json", SITE, 422, "not JSON"),
    ("session-key-type", "/widget/api/session", wbody(key=5), SITE, 422, "key: "),
    ("session-key-too-long", "/widget/api/session", wbody(key="k" * 65), SITE, 422, "key: at most 64 characters"),
    ("session-no-key", "/widget/api/session", b"{}", SITE, 422, "the widget key (key) is missing"),
    ("session-over-limit", "/widget/api/session", wbody(key="k", pad="x" * 300_000), SITE, 413,
     "exceeded the limit of 262,144 bytes"),
    ("chat-long-message", "/widget/api/chat", wbody(key="k", message="m" * 100_001), SITE, 422,
     "message: at most 100,000 characters"),
    ("chat-too-many-uploads", "/widget/api/chat", wbody(key="k", uploads=["u"] * 5), SITE, 422,
     "uploads: at most 4 items, got 5"),
    ("chat-collection-path", "/widget/api/chat", wbody(key="k", collection="../../etc"), SITE, 422, "collection"),
    ("session-malformed-key", "/widget/api/session", wbody(key="pk_short"), EVIL, 401, "malformed"),
    ("upload-no-file", "/widget/api/uploads", {"data": {"key": "pk_x"}}, EVIL, 422, "file: required"),
    ("upload-chunked", "/widget/api/uploads", "chunked", SITE, 413, "the upload exceeded the limit of 200,000"),
]


@pytest.mark.parametrize(("path", "body", "origin", "status", "fragment"), [c[1:] for c in WIDGET_CASES],
                         ids=[c[0] for c in WIDGET_CASES])
def test_bad_widget_input_is_a_clear_4xx_with_cors(env: Env, path: str, body: Any, origin: str, status: int,
                                                   fragment: str) -> None:
    headers = {"Origin": origin}
    if isinstance(body, bytes):
        r = env.client.post(path, content=body, headers={**headers, "Content-Type": "text/plain;charset=UTF-8"})
    elif body == "chunked":
        r = env.client.post(path, content=chunks(50 * 1024 * 1024),
                            headers={**headers, "Content-Type": "multipart/form-data; boundary=b"})
    else:
        r = env.client.post(path, headers=headers, **body)
    check_refusal(r, status, fragment, cors=origin)


def test_widget_refusals_of_a_real_key_keep_cors(env: Env) -> None:
    session = {"key": env.widget_key}
    check_refusal(env.client.post("/widget/api/session", content=json.dumps(session), headers={"Origin": EVIL}),
                  403, "not allowed", cors=EVIL)
    r = env.client.post("/widget/api/uploads", headers={"Origin": SITE}, data={"key": env.widget_key},
                        files={"file": ("a.png", b"not an image", "image/png")})
    check_refusal(r, 415, "not an image", cors=SITE)


def test_an_unexpected_error_on_a_widget_route_still_carries_cors(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 500 handler runs in Starlette's ServerErrorMiddleware, outside CORSMiddleware and
    WidgetCors: without its own headers the browser would show a network error."""
    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(env.app.state.widget_keys, "verify", broken)
    r = env.client.post("/widget/api/session", content=wbody(key=env.widget_key), headers={"Origin": EVIL})
    assert r.status_code == 500 and r.json()["error"]["type"] == "internal_error"
    assert r.headers["access-control-allow-origin"] == EVIL and "Traceback" not in r.text

    def surrogate(*_args: Any) -> None:
        "\ud800".encode()

    monkeypatch.setattr(env.app.state.widget_keys, "verify", surrogate)  # the catch-all's fallback
    r = env.client.post("/widget/api/session", content=wbody(key=env.widget_key), headers={"Origin": EVIL})
    check_refusal(r, 422, "unpaired UTF-16 surrogate", cors=EVIL)


def test_an_unexpected_api_error_carries_cors_for_an_allowed_origin(env: Env,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(env.app.state.tool_runner, "run", broken)
    for origin, expected in ((SITE, SITE), (EVIL, None)):
        r = env.request("POST", "/api/tools/halve", "chat", json={"arguments": {"n": 2}},
                        headers={"Origin": origin})
        assert r.status_code == 500 and r.headers.get("access-control-allow-origin") == expected


def test_a_widget_quota_refusal_carries_cors(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, plugins=[], llm={"backend": "fake"},
                             quotas={"requests_per_minute_per_key": 1})
    app = create_app(build_runtime(settings, backend=FakeBackend()), with_ui=False)
    key = app.state.widget_keys.create("acme", [SITE], anonymous=True)[0].key
    with TestClient(app, raise_server_exceptions=False) as client:
        body = wbody(key=key, anon="visitor-123456", message="hello")
        assert client.post("/widget/api/chat", content=body, headers={"Origin": SITE}).status_code == 200
        r = client.post("/widget/api/chat", content=body, headers={"Origin": SITE})
    assert r.status_code == 429 and r.headers["access-control-allow-origin"] == SITE
    assert "in a minute" in r.json()["error"]["message"] and "retry-after" in r.headers


# -- the JSON checks themselves -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "depth"), [
    (b"[]", 1), (b'{"a": [1, {"b": "[[[["}]}', 3), (b'"\\"[[["', 0), (b"]]]][[", 2), (b'{"a": "x\\\\"}[', 1),
    (b'"unclosed\n[[[\n"', 3), (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, MAX_JSON_DEPTH), (DEEP, 100_000),
])
def test_json_depth_ignores_strings_and_escapes(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_valid_unicode_and_nesting_at_the_limit_pass() -> None:
    for text in (b'{"a": "\\ud83d\\ude00"}', b'{"a": "\\\\ud800"}', '{"a": "😀 学习"}'.encode(),
                 b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH):
        check_json(text)
    with pytest.raises(InvalidInput, match="deeper than 64"):
        check_json(b"[" * 65 + b"]" * 65)


# -- the command line -----------------------------------------------------------------------------


COMMANDS = [["config", "show"], ["tools"], ["plugins"], ["keys", "list"], ["route", "hi"], ["chat", "hi"],
            ["models", "list"], ["usage"], ["audit"], ["serve"], ["mcp"]]


def run_cli(args: list[str], home: Path) -> Any:
    result = CliRunner().invoke(cli, args, env={"MENTORLY_HOME": str(home), "MENTORLY_CONFIG": None})
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_home_that_is_a_file_is_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    result = run_cli(args, home)
    assert f"the data folder {home}" in result.output and "is a file, not a folder" in result.output


@pytest.mark.parametrize("args", COMMANDS[:4], ids=[" ".join(c) for c in COMMANDS[:4]])
def test_a_home_below_a_file_is_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "file").write_text("x")
    result = run_cli(args, tmp_path / "file" / "home")
    assert "cannot be created" in result.output and str(tmp_path / "file") in result.output


def test_an_unwritable_home_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("assistant.config.os.access", lambda *_args: False)  # root writes anywhere
    assert "is not writable by this user" in run_cli(["keys", "list"], tmp_path).output


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536", "http"])
def test_serve_refuses_a_port_out_of_range(port: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", port])
    assert result.exit_code == 2 and "'--port'" in result.output and "Traceback" not in result.output
    assert ("1<=x<=65535" in result.output) or ("not a valid integer" in result.output), result.output


@pytest.mark.parametrize(("args", "home_is_file", "expected"), [
    (["serve", "--port", "99999"], False, "99999 is not in the range 1<=x<=65535"),
    (["keys", "list"], True, "is a file, not a folder"),
], ids=["serve-port", "keys-home-file"])
def test_the_real_command_exits_nonzero_without_a_traceback(tmp_path: Path, args: list[str], home_is_file: bool,
                                                            expected: str) -> None:
    home = tmp_path / "home"
    if home_is_file:
        home.write_text("x")
    env = {**os.environ, "MENTORLY_HOME": str(home), "PYTHONPATH": str(REPO_ROOT), "MENTORLY_PLUGINS": "[]"}
    proc = subprocess.run([sys.executable, "-m", "mentorly_app", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
