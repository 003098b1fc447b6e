"""Two replicas that agree: two real ``mentorly serve`` processes on one PostgreSQL database and
one shared folder (uploads, trained models), with separate homes (their caches) and nothing
else in common, as compose.yaml runs them.

The LLM is the scripted fake (each turn's answer is an echo): what is tested here is the state
the replicas share, not the answers. One module-scoped pair of servers; the tests run in file
order and the last one kills replica A with SIGKILL in the middle of an ingest.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import warm_router_cache
from tests.support.live_api import free_port

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[1]
TENANT = "school"


@dataclass
class Replica:
    name: str
    home: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    db_url: str
    shared: Path
    env: dict[str, str]
    a: Replica
    b: Replica
    keys: dict[str, list[str]] = field(default_factory=dict)
    metered: int = 0  # usage rows the tests expect (turns and direct tool calls that succeeded)
    _turn: int = 0

    def h(self, key: str = "main") -> dict[str, str]:
        """Authorization for the next key of a pool: every key is limited to 10 requests a
        minute (counted across both replicas), so the polling steps take turns."""
        self._turn += 1
        pool = self.keys[key]
        return {"Authorization": f"Bearer {pool[self._turn % len(pool)]}"}

    def sql(self, query: str, **params: Any) -> Any:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(query), params).all()
        finally:
            engine.dispose()


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mentorly_app", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _start(replica: Replica, env: dict[str, str]) -> None:
    log = open(replica.home / "serve.log", "wb")  # noqa: SIM115  (the process's lifetime)
    replica.proc = subprocess.Popen(
        [sys.executable, "-m", "mentorly_app", "serve", "--host", "127.0.0.1",
         "--port", str(replica.port)],
        cwd=REPO, env={**env, "MENTORLY_HOME": str(replica.home)}, stdout=log,
        stderr=subprocess.STDOUT)


def _wait_ready(replica: Replica, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        assert replica.proc is not None
        if replica.proc.poll() is not None:
            raise AssertionError(f"replica {replica.name} exited: "
                                 + (replica.home / "serve.log").read_text(errors="replace")[-3000:])
        try:
            r = httpx.get(replica.url + "/readyz", timeout=5)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"replica {replica.name} not ready after {timeout_s} s: {last}")


@pytest.fixture(scope="module")
def cluster(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    db_url = str(pg_server.create_database("replicas"))
    shared = root / "shared"
    shared.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTORLY_")}
    env.update({
        "PYTHONPATH": str(REPO),
        "MENTORLY_DATABASE_URL": db_url,
        "MENTORLY_SHARED_DIR": str(shared),
        "MENTORLY_DEFAULT_TENANT": TENANT,
        "MENTORLY_LLM__BACKEND": "fake",
        "MENTORLY_API__RATE_LIMIT_PER_MINUTE": "10",
        "MENTORLY_KNOWLEDGE__LEASE_TTL_S": "4",
        "MENTORLY_KNOWLEDGE__SYNC_INTERVAL_S": "0.5",
        "MENTORLY_RECOMMENDATION__RETRAIN_EVERY_HOURS": "0.001",  # 3.6 s
        "MENTORLY_LOG_LEVEL": "INFO",  # the retrain's log line is counted
    })
    a = Replica("A", root / "home-a", free_port())
    b = Replica("B", root / "home-b", free_port())
    a.home.mkdir()
    b.home.mkdir()
    for r in (a, b):  # as after an earlier start: the router's example vectors are cached (see
        warm_router_cache(r.home)  # tests/conftest.py; test_router.py covers a cold cache)
    # what compose's init service does, once: the schema, then the servers
    _cli({**env, "MENTORLY_HOME": str(a.home)}, "db", "upgrade")
    c = Cluster(db_url, shared, env, a, b)
    from assistant.security import KeyStore
    from assistant.storage import Database

    store = KeyStore(Database(db_url))
    for name, count in (("main", 30), ("limited", 1), ("admin", 10)):
        c.keys[name] = [store.create(TENANT, "admin", name=f"{name}-{i}")[0] for i in range(count)]
    _start(a, env)
    _start(b, env)
    try:
        _wait_ready(a)
        _wait_ready(b)
        yield c
    finally:
        for r in (a, b):
            if r.proc is not None and r.proc.poll() is None:
                r.proc.terminate()
                try:
                    r.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    r.proc.kill()


def _png() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, format="PNG")
    return buf.getvalue()


def test_an_upload_on_a_is_classified_on_b(cluster: Cluster) -> None:
    up = httpx.post(cluster.a.url + "/api/uploads", headers=cluster.h(),
                    files={"file": ("cat.png", _png(), "image/png")}, timeout=60)
    assert up.status_code == 201, up.text
    upload_id = up.json()["id"]
    results = []
    for replica in (cluster.b, cluster.a):
        r = httpx.post(replica.url + "/api/tools/classify_image", headers=cluster.h(),
                       json={"arguments": {"top_k": 3}, "uploads": [upload_id]}, timeout=120)
        assert r.status_code == 200, r.text
        cluster.metered += 1
        results.append([p["label"] for p in r.json()["data"]["labels"]])
    assert results[0] == results[1]
    assert results[0][0] in {"Egyptian cat", "tabby cat", "tiger cat"}, results


def test_a_document_ingested_on_a_is_found_on_b_within_seconds(cluster: Cluster) -> None:
    doc = ("# Lab safety\n\nIn the Kestrel Building chemistry lab, goggles stay on until the "
           "last beaker is washed and the fume hood sash is closed below the yellow line.\n")
    r = httpx.post(cluster.a.url + "/api/knowledge/chem/documents", headers=cluster.h(),
                   files={"file": ("safety.md", doc.encode(), "text/markdown")}, timeout=120)
    assert r.status_code == 200, r.text
    ingested = time.monotonic()
    query = {"query": "When may I take off my goggles in the Kestrel lab?", "collection": "chem"}
    while True:
        s = httpx.post(cluster.b.url + "/api/knowledge/search", headers=cluster.h(), json=query,
                       timeout=60)
        assert s.status_code == 200, s.text
        if any("yellow line" in h["text"] for h in s.json()["passages"]):
            print(f"searchable on B {time.monotonic() - ingested:.2f} s after A's ingest")
            break
        assert time.monotonic() - ingested < 10, f"not searchable on B after 10 s: {s.json()}"
        time.sleep(0.2)


def test_a_per_minute_limit_is_counted_across_both_replicas(cluster: Cluster) -> None:
    h = cluster.h("limited")
    for i in range(10):
        replica = cluster.a if i % 2 == 0 else cluster.b
        r = httpx.get(replica.url + "/api/tools", headers=h, timeout=30)
        assert r.status_code == 200, (i, r.text)
    for replica in (cluster.a, cluster.b):
        r = httpx.get(replica.url + "/api/tools", headers=h, timeout=30)
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) >= 1


def test_a_conversation_started_on_a_continues_on_b(cluster: Cluster) -> None:
    first = httpx.post(cluster.a.url + "/api/chat", headers=cluster.h(),
                       json={"message": "Hello from replica A", "stream": False}, timeout=120)
    assert first.status_code == 200, first.text
    cluster.metered += 1
    conv = first.json()["conversation_id"]
    second = httpx.post(cluster.b.url + "/api/chat", headers=cluster.h(),
                        json={"message": "And hello from B", "stream": False,
                              "conversation_id": conv}, timeout=120)
    assert second.status_code == 200, second.text
    cluster.metered += 1
    assert second.json()["conversation_id"] == conv
    for replica in (cluster.a, cluster.b):
        got = httpx.get(f"{replica.url}/api/conversations/{conv}", headers=cluster.h(),
                        timeout=30).json()
        users = [m["content"] for m in got["messages"] if m["role"] == "user"]
        assert users == ["Hello from replica A", "And hello from B"]
        assert [m["role"] for m in got["messages"]].count("assistant") == 2


def test_the_scheduled_retrain_runs_on_one_replica_only(cluster: Cluster) -> None:
    """Both replicas find the recommender due at once; one database lease, one retrain. Each
    request takes the next admin key: one key would pass its 10 a minute while polling."""
    admin = partial(cluster.h, "admin")
    catalog = (REPO / "tools" / "recommendation" / "data" / "demo_catalog.csv").read_bytes()
    r = httpx.post(cluster.a.url + "/api/catalog", headers=admin(), timeout=120,
                   files={"file": ("catalog.csv", catalog, "text/csv")})
    assert r.status_code == 200, r.text
    ids = [line.split(",", 1)[0] for line in catalog.decode().splitlines()[1:8]]
    events = [{"user": f"learner-{u}", "resource": rid, "kind": "complete"}
              for u in range(4) for rid in ids[u:u + 3]]
    assert httpx.post(cluster.b.url + "/api/events", headers=admin(), json=events,
                      timeout=60).status_code == 200
    trained = httpx.post(cluster.a.url + "/api/recommendations/train", headers=admin(), timeout=300)
    assert trained.status_code == 200, trained.text
    v1 = trained.json()["version"]
    time.sleep(4.5)  # older than retrain_every_hours (3.6 s), and an event since
    assert httpx.post(cluster.a.url + "/api/events", headers=admin(), timeout=60, json={
        "user": "learner-9", "resource": ids[0], "kind": "view"}).status_code == 200
    answers: list[httpx.Response] = []

    def ask(replica: Replica) -> None:
        answers.append(httpx.get(replica.url + "/api/recommendations", headers=admin(), timeout=120,
                                 params={"user": "learner-1"}))

    askers = [threading.Thread(target=ask, args=(r,)) for r in (cluster.a, cluster.b)]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    deadline = time.monotonic() + 120
    while True:  # the retrain is in the background; both replicas then serve the new model
        versions = {httpx.get(r.url + "/api/recommendations", headers=admin(), timeout=60,
                              params={"user": "learner-1"}).json()["model_version"]
                    for r in (cluster.a, cluster.b)}
        if versions == {str(v1 + 1)} or versions == {v1 + 1}:
            break
        assert time.monotonic() < deadline, f"no retrain seen: {versions}"
        time.sleep(0.5)
    time.sleep(3)  # a second retrain (the race lost by the lease) would show up as v1 + 2
    for r in (cluster.a, cluster.b):
        got = httpx.get(r.url + "/api/recommendations", headers=admin(), timeout=60,
                        params={"user": "learner-1"}).json()["model_version"]
        assert str(got) == str(v1 + 1)
    logs = [(r.home / "serve.log").read_text(errors="replace") for r in (cluster.a, cluster.b)]
    assert sum(log.count("retrained on schedule") for log in logs) == 1, logs


def _big_document(paragraphs: int) -> bytes:
    lines = ["# Field notes"]
    for i in range(paragraphs):
        lines.append(f"\n## Station {i}\n\nAt station {i} the river was {i % 17 + 3} metres wide "
                     f"and the water ran at {i % 5 + 1} metres per second; the team logged "
                     f"{i % 11 + 2} herons, {i % 7} otters and a reed bed {i % 13 + 4} metres long.")
    return "\n".join(lines).encode()


def test_sigkill_during_an_ingest_on_a_leaves_b_serving_and_the_collection_clean(
        cluster: Cluster) -> None:
    big = _big_document(150)  # seconds of embedding on A: killed well inside them
    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            outcome["response"] = httpx.post(
                cluster.a.url + "/api/knowledge/field/documents", headers=cluster.h(),
                files={"file": ("notes.md", big, "text/markdown")}, timeout=300)
        except httpx.TransportError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill A while it holds the collection's write lease
        held = cluster.sql("SELECT count(*) FROM leases l JOIN kb_collections c "
                           "ON l.name = 'kb:' || CAST(c.id AS VARCHAR) WHERE c.name = 'field'")[0][0]
        if held:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the ingest on A never took the collection's lease")
    time.sleep(0.3)  # into the embedding of the 150 sections
    assert "response" not in outcome, "the ingest finished before A could be killed"
    assert cluster.a.proc is not None
    cluster.a.proc.send_signal(signal.SIGKILL)
    cluster.a.proc.wait(timeout=30)
    thread.join(timeout=60)
    assert "error" in outcome, "A answered although it was killed mid-ingest"

    # B serves on: search, chat, the earlier document
    s = httpx.post(cluster.b.url + "/api/knowledge/search", headers=cluster.h(),
                   json={"query": "herons at station 12", "collection": "field"}, timeout=60)
    assert s.status_code == 200, s.text
    assert s.json()["passages"] == []  # the half-written document is never searchable
    r = httpx.post(cluster.b.url + "/api/knowledge/search", headers=cluster.h(),
                   json={"query": "goggles in the Kestrel lab", "collection": "chem"}, timeout=60)
    assert any("yellow line" in h["text"] for h in r.json()["passages"])

    # after A's lease runs out (4 s), B settles what A left (no pending rows), without a re-run
    deadline = time.monotonic() + 60
    while True:
        httpx.post(cluster.b.url + "/api/knowledge/search", headers=cluster.h(),
                   json={"query": "herons", "collection": "field"}, timeout=60)
        left = cluster.sql("SELECT count(*) FROM kb_documents WHERE status <> 'ready'")[0][0]
        if left == 0:
            break
        assert time.monotonic() < deadline, f"{left} unsettled documents after 60 s"
        time.sleep(1)
    # the same upload again, on B, completes: the document exactly once, every chunk searchable
    again = httpx.post(cluster.b.url + "/api/knowledge/field/documents", headers=cluster.h(),
                       files={"file": ("notes.md", big, "text/markdown")}, timeout=300)
    assert again.status_code == 200, again.text
    docs = cluster.sql("SELECT d.source, d.status, d.n_chunks, "
                       "(SELECT count(*) FROM kb_chunks k WHERE k.document_id = d.id) "
                       "FROM kb_documents d ORDER BY d.source")
    assert [(d[0].rsplit("/", 1)[-1], d[1]) for d in docs] == [("notes.md", "ready"),
                                                                ("safety.md", "ready")], docs
    assert all(d[2] == d[3] and d[2] > 0 for d in docs), docs
    s = httpx.post(cluster.b.url + "/api/knowledge/search", headers=cluster.h(),
                   json={"query": "how many otters at station 12", "collection": "field"},
                   timeout=60)
    assert any("station 12 " in h["text"] for h in s.json()["passages"]), s.json()


def test_nothing_lost_or_duplicated(cluster: Cluster) -> None:
    """After all of the above (A killed): usage rows, conversations and uploads exactly once."""
    usage = cluster.sql("SELECT count(*) FROM usage WHERE tenant_id = :t", t=TENANT)[0][0]
    assert usage == cluster.metered
    assert cluster.sql("SELECT count(*) FROM conversations")[0][0] == 1
    roles = [r[0] for r in cluster.sql("SELECT role FROM messages")]
    assert roles.count("user") == 2 and roles.count("assistant") == 2, roles
    uploads = [p for p in (cluster.shared / "uploads").rglob("*") if p.is_file()]
    assert len([p for p in uploads if not p.name.endswith(".json")]) == 1, uploads
    assert not list((cluster.a.home).rglob("uploads/*")), "an upload landed in a replica's home"
