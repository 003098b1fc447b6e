"""``/api/catalog``, ``/api/events`` and ``/api/recommendations`` over real HTTP (uvicorn on
127.0.0.1), on a slice of the real demo catalog with the real database and model: imports with
row reports (CSV, JSON, multipart), events with duplicates and rejections, training,
recommendations, tenant isolation, scopes, refused bodies and a bounded schemathesis run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

import tools.recommendation.api as rec_api
from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.runtime import build_runtime
from mentorly_app.web import create_app
from tests.support.live_api import LiveServer, assert_error
from tools.recommendation.demo import DEMO_CATALOG

# The first 16 demo resources (mathematics, physics, ...): their content vectors are precomputed.
CATALOG_ROWS = DEMO_CATALOG.read_text(encoding="utf-8").splitlines()[:17]
BAD_ROWS = [
    ",No id,,,,mathematics,beginner,multi,,,10",  # row 18: missing id
    "bad-level,Bad level,,,,mathematics,expert,multi,,,10",  # row 19
    "math-101,Duplicate,,,,mathematics,beginner,multi,,,10",  # row 20: duplicate id
]
CATALOG_CSV = "\n".join(CATALOG_ROWS + BAD_ROWS) + "\n"


class Env:
    def __init__(self, server: LiveServer, app: Any) -> None:
        self.server, self.app, self.url = server, app, server.url
        keys = app.state.keys
        self.admin, _ = keys.create("acme", "admin")
        self.tools, _ = keys.create("acme", "tools")
        self.chat, _ = keys.create("acme", "chat")
        self.knowledge, _ = keys.create("acme", "knowledge")
        self.beta_admin, _ = keys.create("beta", "admin")
        self.beta, _ = keys.create("beta", "tools")
        self.fuzz, _ = keys.create("fuzz", "admin")
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def h(self, key: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **extra}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home: Path = tmp_path_factory.mktemp("api-rec")
    runtime = build_runtime(load_settings(home=home, plugins=["tools.recommendation"],
                                          llm={"backend": "fake"}), backend=FakeBackend())
    app = create_app(runtime, with_ui=False)
    server = LiveServer(app).start()
    e = Env(server, app)
    yield e
    e.client.close()
    server.stop()



@pytest.fixture(scope="module")
def imported(env: Env) -> dict[str, Any]:
    r = env.client.post("/api/catalog", content=CATALOG_CSV.encode(),
                        headers=env.h(env.admin, **{"Content-Type": "text/csv"}))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_csv_import_reports_accepted_and_rejected_rows(imported: dict[str, Any]) -> None:
    assert imported["imported"] == 16 and imported["updated"] == 0
    rejected = {r["row"]: r["reason"] for r in imported["rejected"]}
    assert set(rejected) == {18, 19, 20}
    assert "missing id" in rejected[18] and "unknown level" in rejected[19]
    assert "duplicate id" in rejected[20]


def test_json_and_multipart_imports_update_and_report(env: Env, imported: dict[str, Any]) -> None:
    rows = [{"id": "math-101", "title": "Numbers and Arithmetic Refresher", "subject": "mathematics",
             "level": "beginner", "duration_min": 45},
            {"id": "x", "title": "No subject"}]
    r = env.client.post("/api/catalog", json=rows, headers=env.h(env.admin))
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 1 and r.json()["rejected"] == [{"row": 2, "reason": "missing subject"}]
    lines = "\n".join(json.dumps(x) for x in rows[:1]) + "\nnot json\n"
    r = env.client.post("/api/catalog", headers=env.h(env.admin),
                        files={"file": ("more.jsonl", lines.encode(), "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 1 and r.json()["rejected"][0]["row"] == 2


def test_catalog_listing_is_per_tenant_and_filtered(env: Env, imported: dict[str, Any]) -> None:
    page = env.client.get("/api/catalog", headers=env.h(env.chat), params={"limit": 5}).json()
    assert page["total"] == 16 and len(page["items"]) == 5
    assert page["items"][0]["id"] == "math-101" and "prerequisites" in page["items"][0]
    math = env.client.get("/api/catalog", headers=env.h(env.tools),
                          params={"subject": "mathematics", "level": "beginner"}).json()
    assert math["total"] >= 1
    assert all(i["subject"] == "mathematics" and i["level"] == "beginner" for i in math["items"])
    assert env.client.get("/api/catalog", headers=env.h(env.beta)).json() == {"total": 0, "items": []}


def test_events_report_duplicates_and_rejections(env: Env, imported: dict[str, Any]) -> None:
    batch = {"events": [
        {"user": "ann", "resource": "math-101", "kind": "complete", "timestamp": 1_700_000_000},
        {"user": "ann", "resource": "math-101", "kind": "complete", "timestamp": 1_700_000_000},
        {"user": "ann", "resource": "no-such", "kind": "view"},
        {"user": "ann", "resource": "math-102", "kind": "rating", "value": 9},
        {"user": "ann", "resource": "math-102", "kind": "teleport"},
        {"user": "bob", "resource": "math-102", "kind": "like", "timestamp": "2024-03-01T10:00:00Z"},
    ]}
    r = env.client.post("/api/events", json=batch, headers=env.h(env.tools))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["accepted"] == 2 and report["duplicates"] == [1]
    reasons = {x["index"]: x["reason"] for x in report["rejected"]}
    assert "unknown resource" in reasons[2] and "1 to 5" in reasons[3] and "unknown kind" in reasons[4]
    again = env.client.post("/api/events", json=batch, headers=env.h(env.chat)).json()
    assert again["accepted"] == 0 and again["duplicates"] == [0, 1, 5]
    one = env.client.post("/api/events", headers=env.h(env.tools),
                          json={"user": "cy", "resource": "math-101", "kind": "view"})
    assert one.status_code == 200 and one.json()["accepted"] == 1
    listed = env.client.post("/api/events", headers=env.h(env.tools), json=[
        {"user": "cy", "resource": "math-102", "kind": "view"}, {"user": "cy", "resource": "x", "kind": "view"}])
    assert listed.status_code == 200 and listed.json()["accepted"] == 1 and listed.json()["rejected"][0]["index"] == 1


def test_tenant_b_cannot_use_tenant_a_catalog_or_events(env: Env, imported: dict[str, Any]) -> None:
    r = env.client.post("/api/events", headers=env.h(env.beta),
                        json={"user": "ann", "resource": "math-101", "kind": "view"})
    assert r.json()["accepted"] == 0 and "unknown resource" in r.json()["rejected"][0]["reason"]
    assert_error(env.client.post("/api/events", headers=env.h(env.beta),
                                 json={"user": "ann", "resource": "math-101", "kind": "view",
                                       "tenant": "acme"}), 422, "invalid_input")
    assert_error(env.client.get("/api/recommendations", headers=env.h(env.beta), params={"user": "ann"}),
                 404, "not_found", "catalog")
    assert_error(env.client.post("/api/recommendations/train", headers=env.h(env.beta_admin)),
                 404, "not_found", "catalog")


def test_train_then_recommend_leaves_out_completed_resources(env: Env, imported: dict[str, Any]) -> None:
    env.client.post("/api/events", headers=env.h(env.tools), json={"events": [
        {"user": "dan", "resource": "math-101", "kind": "complete"},
        {"user": "dan", "resource": "math-102", "kind": "complete"}]})
    r = env.client.post("/api/recommendations/train", headers=env.h(env.admin))
    assert r.status_code == 200, r.text
    trained = r.json()
    assert trained["version"] >= 1 and trained["n_items"] == 16 and trained["n_events"] >= 3
    r = env.client.get("/api/recommendations", headers=env.h(env.chat), params={"user": "dan", "k": 4})
    assert r.status_code == 200, r.text
    recs = r.json()
    assert recs["user"] == "dan" and recs["model_version"] == str(trained["version"])
    ids = [i["id"] for i in recs["items"]]
    assert len(ids) == 4 and not {"math-101", "math-102"} & set(ids)
    assert all(i["explanation"] for i in recs["items"])
    assert recs["items"] == sorted(recs["items"], key=lambda i: -i["score"]) or len(
        {i["subject"] for i in recs["items"]}) > 1  # ranked, or re-ordered for diversity
    beginner = env.client.get("/api/recommendations", headers=env.h(env.tools),
                              params={"user": "dan", "level": "beginner", "lang": "zh"}).json()
    assert beginner["items"] and all(i["level"] == "beginner" for i in beginner["items"])
    assert beginner["language"] == "zh"


def test_scopes_are_enforced(env: Env, imported: dict[str, Any]) -> None:
    csv_headers = {"Content-Type": "text/csv"}
    for key in (env.tools, env.chat, env.knowledge):
        assert_error(env.client.post("/api/catalog", content=CATALOG_CSV.encode(),
                                     headers=env.h(key, **csv_headers)), 403, "forbidden", "admin")
        assert_error(env.client.post("/api/recommendations/train", headers=env.h(key)), 403, "forbidden")
    k = env.h(env.knowledge)
    assert_error(env.client.get("/api/recommendations", headers=k, params={"user": "a"}), 403,
                 "forbidden", "'tools', 'chat'")
    assert_error(env.client.post("/api/events", headers=k,
                                 json={"user": "a", "resource": "math-101", "kind": "view"}), 403, "forbidden")
    assert_error(env.client.get("/api/catalog", headers=k), 403, "forbidden")
    assert_error(env.client.get("/api/catalog"), 401, "unauthorized")


def test_bad_catalog_bodies_are_refused_in_the_one_error_shape(env: Env, imported: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    h = env.h(env.admin)
    assert_error(env.client.post("/api/catalog", content=b"id,title", headers={**h, "Content-Type": "text/plain"}),
                 415, "unsupported_media_type", "content-type")
    assert_error(env.client.post("/api/catalog", headers=h,
                                 files={"file": ("catalog.xlsx", b"PK\x03\x04", "application/octet-stream")}),
                 415, "unsupported_media_type", ".csv")
    assert_error(env.client.post("/api/catalog", content="id,title\n1,é".encode("latin-1"),
                                 headers={**h, "Content-Type": "text/csv"}), 415, "unsupported_media_type", "UTF-8")
    assert_error(env.client.post("/api/catalog", content=b"[{", headers={**h, "Content-Type": "application/json"}),
                 422, "invalid_input", "not valid JSON")
    assert_error(env.client.post("/api/catalog", content=b"", headers={**h, "Content-Type": "text/csv"}),
                 422, "invalid_input", "empty")
    assert_error(env.client.post("/api/catalog", headers=h, files={"other": ("a.csv", b"id", "text/csv")}),
                 422, "invalid_input", "'file'")
    monkeypatch.setattr(rec_api, "MAX_FILE_BYTES", 1000)
    assert_error(env.client.post("/api/catalog", content=CATALOG_CSV.encode(),
                                 headers={**h, "Content-Type": "text/csv"}), 413, "payload_too_large")
    assert_error(env.client.post("/api/catalog", headers=h,
                                 files={"file": ("c.csv", CATALOG_CSV.encode(), "text/csv")}),
                 413, "payload_too_large")


def test_bad_event_and_recommendation_requests(env: Env, imported: dict[str, Any]) -> None:
    h = env.h(env.tools)
    assert_error(env.client.post("/api/events", headers=h, json={"user": "a"}), 422, "invalid_input")
    assert_error(env.client.post("/api/events", headers=h, json={"events": "nope"}), 422, "invalid_input")
    assert_error(env.client.get("/api/recommendations", headers=h), 422, "invalid_input", "user")
    assert_error(env.client.get("/api/recommendations", headers=h, params={"user": "a\x00b"}),
                 422, "invalid_input", "user")
    far = env.client.post("/api/events", headers=h, json={"events": [
        {"user": "eve", "resource": "math-101", "kind": "view", "timestamp": 1e30},
        {"user": "eve", "resource": "math-101", "kind": "view", "timestamp": "99999999999999999999"},
        {"user": "eve", "resource": "math-101", "kind": "view", "timestamp": 1_700_000_000}]})
    assert far.status_code == 200, far.text
    assert far.json()["accepted"] == 1
    assert [(r["index"], "out of range" in r["reason"]) for r in far.json()["rejected"]] == [(0, True), (1, True)]
    assert_error(env.client.get("/api/recommendations", headers=h, params={"user": "a", "k": 50}),
                 422, "invalid_input", "k")
    assert_error(env.client.get("/api/recommendations", headers=h, params={"user": "a", "level": "expert"}),
                 422, "invalid_input", "level")


REC_OPERATIONS = ["import_catalog", "list_catalog", "record_events", "train_recommender",
                  "get_recommendations"]


@pytest.mark.parametrize("operation_id", REC_OPERATIONS)
def test_fuzzed_requests_never_get_a_5xx(env: Env, imported: dict[str, Any], operation_id: str) -> None:
    schema = schemathesis.openapi.from_url(env.url + "/openapi.json")
    ops = {op.definition.raw["operationId"]: op for op in (r.ok() for r in schema.get_all_operations())}
    assert set(REC_OPERATIONS) <= set(ops)
    key = env.fuzz if operation_id in ("import_catalog", "train_recommender") else env.tools

    @settings(max_examples=8, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=ops[operation_id].as_strategy())
    def run(case: Any) -> None:
        r = case.call(base_url=env.url, headers=env.h(key), timeout=120)
        assert r.status_code < 500, f"{case.method} {case.formatted_path}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            body = r.json()
            assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body

    run()
