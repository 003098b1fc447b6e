"""Recommendation plugin on the real demo catalog, the real database and the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant import ToolContext, ToolError
from assistant.config import Settings, load_settings
from assistant.errors import InvalidInput
from assistant.plugins import load_registry
from tools.recommendation import prepare_models
from tools.recommendation.catalog import find_cycles, import_file, load_catalog
from tools.recommendation.cli import rec
from tools.recommendation.demo import DEMO_CATALOG
from tools.recommendation.events import count_events, record_events, user_events
from tools.recommendation.examples import EXAMPLES
from tools.recommendation.extraction import extract_arguments
from tools.recommendation.model import item_text, load_model, model_path, seed_vectors, text_key
from tools.recommendation.recommender import recommend
from tools.recommendation.tool import recommend_resources

TENANT = "default"
_CJK = "\u4e00-\u9fff"


@pytest.fixture(scope="module")
def settings(session_home: Path) -> Settings:
    s = load_settings(home=session_home / "recommend")
    s.ensure_dirs()
    return s


@pytest.fixture(scope="module")
def status(settings: Settings) -> str:
    """The demo catalog and simulated learners, loaded and trained once for the module."""
    line = prepare_models(settings=settings, progress=False)
    assert line is not None
    return line


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_demo_catalog_loads_trains_and_saves_artifact(settings: Settings, status: str) -> None:
    catalog = load_catalog(TENANT, settings)
    assert len(catalog) == 100
    assert all(c.title and _has_cjk(c.title_zh) and c.description and c.description_zh
               for c in catalog)
    assert len({c.subject for c in catalog}) == 10
    assert "demo loaded (100 resources" in status
    model = load_model(settings, TENANT)
    assert model is not None and model_path(settings, TENANT).is_file()
    assert model_path(settings, TENANT).parent == settings.home / "models" / "recommend" / TENANT
    selection = model.meta["selection"]["candidates"]
    chosen = model.meta["cf"]
    assert chosen.startswith(("ease", "itemknn"))
    assert selection[chosen] > selection["popularity"]  # CF chosen by measurement, and it wins
    if chosen.startswith("ease"):  # the blend weights searched with it are the ones served
        blend = model.meta["blend"]
        assert chosen.endswith(f"blend(content={blend['content_weight']:g},"
                               f"popularity={blend['popularity_weight']:g})")
        assert model.scorer().content_weight == blend["content_weight"]
    assert model.content is not None and model.content.shape == (100, 384)
    # A second prepare neither reloads nor duplicates events.
    n = count_events(TENANT, settings)
    assert "demo loaded" not in (prepare_models(settings=settings, progress=False) or "")
    assert count_events(TENANT, settings) == n


def test_seed_vectors_match_the_embedder(settings: Settings, status: str) -> None:
    from knowledge.embedders import shared_embedder

    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    seeds = seed_vectors(embedder.name)
    catalog = load_catalog(TENANT, settings)
    assert len(seeds) == 100
    for item in (catalog[0], catalog[57]):
        fresh = embedder.embed_documents([item_text(item)])[0]
        assert float(fresh @ seeds[text_key(item_text(item))]) > 0.98


def test_cold_start_user_gets_open_diverse_explained_items(settings: Settings, status: str) -> None:
    result = recommend(TENANT, "brand-new-learner", k=5, settings=settings)
    assert result.cold and len(result.items) == 5
    by_id = {c.id: c for c in load_catalog(TENANT, settings)}
    assert all(not by_id[r.id].prerequisites for r in result.items)  # nothing they cannot start
    assert len({r.subject for r in result.items}) >= 4  # diversity across subjects
    assert all(r.explanation for r in result.items)
    assert result.summary().startswith("You have no learning activity yet")
    zh = recommend(TENANT, "brand-new-learner", k=3, language="zh", settings=settings)
    assert all(_has_cjk(r.title) and _has_cjk(r.explanation) for r in zh.items)
    assert zh.summary().splitlines()[1].startswith("1. ")


def test_warm_learner_filters_and_explanations(settings: Settings, status: str) -> None:
    user = "learner-002"
    done = {r for r, kind, _v, _t in user_events(TENANT, user, settings) if kind == "complete"}
    assert done
    result = recommend(TENANT, user, k=8, settings=settings)
    by_id = {c.id: c for c in load_catalog(TENANT, settings)}
    assert not result.cold and result.items
    for r in result.items:
        assert r.id not in done
        assert set(by_id[r.id].prerequisites) <= done
        assert r.explanation
    assert result.confidence > 0.5
    beginners = recommend(TENANT, user, k=5, level="入门", settings=settings)
    assert all(r.level == "beginner" for r in beginners.items)
    maths = recommend(TENANT, user, k=5, subject="数学", settings=settings)
    assert all(r.subject == "mathematics" for r in maths.items)
    with pytest.raises(InvalidInput):
        recommend(TENANT, user, level="expert-plus", settings=settings)


def test_new_events_take_effect_without_retraining(settings: Settings, status: str) -> None:
    user = "fresh-learner"
    version = load_model(settings, TENANT).version  # type: ignore[union-attr]
    before = {r.id for r in recommend(TENANT, user, k=20, settings=settings).items}
    assert "math-102" not in before  # needs math-101 first
    report = record_events([{"user": user, "resource": "math-101", "kind": "complete"},
                            {"user": user, "resource": "math-101", "kind": "rating", "value": 5}],
                           tenant=TENANT, settings=settings)
    assert report.accepted == 2
    after = recommend(TENANT, user, k=20, settings=settings)
    ids = [r.id for r in after.items]
    assert "math-101" not in ids and "math-102" in ids
    assert not after.cold
    assert load_model(settings, TENANT).version == version  # type: ignore[union-attr]
    explanation = next(r.explanation for r in after.items if r.id == "math-102")
    assert "Numbers and Arithmetic Refresher" in explanation or "like you" in explanation


def test_an_old_model_with_new_events_is_retrained_in_the_background(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from tools.recommendation.schedule import wait_for_retrains

    tenant = "scheduled"
    assert import_file(DEMO_CATALOG, tenant=tenant, settings=settings).imported == 100
    record_events([{"user": f"s{n}", "resource": r, "kind": "complete"}
                   for n in range(6) for r in ("math-101", "math-102", "cs-101")],
                  tenant=tenant, settings=settings)
    recommend(tenant, "s0", settings=settings)  # no model yet: trained at once
    first = load_model(settings, tenant)
    assert first is not None and first.meta["events_total"] == 18
    monkeypatch.setenv("MENTORLY_RECOMMENDATION__RETRAIN_EVERY_HOURS", "0.0002")  # 0.72 s
    time.sleep(1.5)
    recommend(tenant, "s0", settings=settings)  # old, but no new event: nothing to learn
    assert wait_for_retrains(30) and load_model(settings, tenant).version == first.version  # type: ignore[union-attr]
    record_events([{"user": "s9", "resource": "cs-101", "kind": "like"}], tenant=tenant,
                  settings=settings)
    served = recommend(tenant, "s9", settings=settings)  # counted just now: not again so soon
    assert wait_for_retrains(30) and load_model(settings, tenant).version == first.version  # type: ignore[union-attr]
    time.sleep(1.0)
    served = recommend(tenant, "s9", settings=settings)  # answered by the current model
    assert served.items
    assert wait_for_retrains(60)
    second = load_model(settings, tenant)
    assert second is not None and int(second.version) == int(first.version) + 1
    assert second.meta["events_total"] == 19
    monkeypatch.setenv("MENTORLY_RECOMMENDATION__RETRAIN_EVERY_HOURS", "0")  # 0: never on schedule
    record_events([{"user": "s10", "resource": "cs-101", "kind": "like"}], tenant=tenant,
                  settings=settings)
    time.sleep(1.0)
    recommend(tenant, "s10", settings=settings)
    assert wait_for_retrains(30) and load_model(settings, tenant).version == second.version  # type: ignore[union-attr]


def test_topic_request_prefers_matching_resources(settings: Settings, status: str) -> None:
    result = recommend(TENANT, "topic-learner", k=3, subject="machine learning", settings=settings)
    ids = [r.id for r in result.items]
    assert any(i.startswith(("ds-", "cs-")) for i in ids)
    assert any("machine learning" in r.explanation for r in result.items)


def test_unreachable_level_recommends_what_unlocks_it(settings: Settings, status: str) -> None:
    result = recommend(TENANT, "path-learner", k=3, subject="mathematics", level="advanced",
                       settings=settings)
    assert result.items and all(r.level == "beginner" for r in result.items)
    assert all(r.explanation.startswith("Needed before") for r in result.items)


def test_malformed_csv_rows_are_reported(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "id,title,subject,level,duration_min,prerequisites\n"
        "ok-1,Good One,art,beginner,30,\n"
        ",No Id,art,beginner,30,\n"
        "bad-level,Bad Level,art,wizard,30,\n"
        "bad-dur,Bad Duration,art,beginner,soon,\n"
        "short-row,Too Few,art\n"
        "ok-1,Duplicate,art,beginner,30,\n"
        "ok-2,Good Two,art,intermediate,45,ok-1;ghost-9\n", encoding="utf-8")
    report = import_file(path, tenant="csv-tenant", settings=settings)
    assert report.imported == 2
    reasons = dict(report.rejected)
    assert set(reasons) == {3, 4, 5, 6, 7}
    assert "missing id" in reasons[3] and "unknown level" in reasons[4]
    assert "duration" in reasons[5] and "fields" in reasons[6] and "duplicate id" in reasons[7]
    assert any("ghost-9" in w for w in report.warnings)
    stored = {c.id: c for c in load_catalog("csv-tenant", settings)}
    assert stored["ok-2"].prerequisites == ["ok-1"]


def test_cyclic_prerequisites_are_detected_and_reported(settings: Settings, tmp_path: Path) -> None:
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e2"], "e2": []}) \
        == [["a", "b", "c"]]
    path = tmp_path / "cyclic.json"
    path.write_text(json.dumps([
        {"id": "a", "title": {"en": "A", "zh": "甲"}, "subject": "s", "level": "beginner",
         "prerequisites": ["c"]},
        {"id": "b", "title": "B", "subject": "s", "level": "beginner", "prerequisites": ["a"]},
        {"id": "c", "title": "C", "subject": "s", "level": "beginner", "prerequisites": ["b"]},
        {"id": "d", "title": "D", "subject": "s", "level": "advanced", "prerequisites": ["a"]},
    ]), encoding="utf-8")
    report = import_file(path, tenant="cyclic", settings=settings)
    assert report.cycles == [["a", "b", "c"]] and report.imported == 4
    assert any("cyclic prerequisites" in line for line in report.lines())
    stored = {c.id: c for c in load_catalog("cyclic", settings)}
    assert stored["a"].title_zh == "甲"
    assert stored["a"].prerequisites == [] and stored["d"].prerequisites == ["a"]


def test_events_duplicates_unknown_resources_and_bad_values(settings: Settings, status: str) -> None:
    tenant_events = count_events(TENANT, settings)
    batch = [
        {"user": "dup-user", "resource": "cs-101", "kind": "view", "timestamp": 1_700_000_000},
        {"user": "dup-user", "resource": "cs-101", "kind": "view", "timestamp": 1_700_000_000},
        {"user": "dup-user", "resource": "no-such-course", "kind": "view"},
        {"user": "dup-user", "resource": "cs-101", "kind": "rating", "value": 9},
        {"user": "dup-user", "resource": "cs-101", "kind": "teleport"},
        {"user": "dup-user", "resource": "cs-101", "kind": "complete",
         "timestamp": "2024-03-01T10:00:00Z"},
        "not an event",
    ]
    report = record_events(batch, tenant=TENANT, settings=settings)
    assert report.accepted == 2 and report.duplicates == [1]
    reasons = dict(report.rejected)
    assert "unknown resource" in reasons[2] and "1 to 5" in reasons[3]
    assert "unknown kind" in reasons[4] and 6 in reasons
    again = record_events(batch, tenant=TENANT, settings=settings)
    assert again.accepted == 0 and again.duplicates == [0, 1, 5]
    assert count_events(TENANT, settings) == tenant_events + 2


def test_extractor_fills_arguments_deterministically() -> None:
    assert extract_arguments("What should I study next?") == {"k": 5}
    assert extract_arguments("Give me 3 courses I should take next") == {"k": 3}
    assert extract_arguments("recommend two advanced physics courses") == \
        {"k": 2, "subject": "physics", "level": "advanced"}
    assert extract_arguments("给我推荐三门入门的数学课") == \
        {"k": 3, "subject": "mathematics", "level": "beginner"}
    assert extract_arguments("我想学机器学习，推荐5个资源") == {"k": 5, "subject": "机器学习"}
    assert extract_arguments("我接下来学什么？") == {"k": 5}
    assert extract_arguments("top 50 things to learn")["k"] == 20


def test_tool_through_the_registry(settings: Settings, status: str) -> None:
    registry = load_registry(["tools.recommendation"])
    tool = registry.get("recommend_resources")
    assert tool.capability == "recommend" and tool is not None
    zh_examples = [e for e in EXAMPLES if _has_cjk(e)]
    assert len(zh_examples) >= 25 and len(EXAMPLES) - len(zh_examples) >= 25
    assert "context" not in tool.parameters["properties"]
    context = ToolContext(tenant=TENANT, user="learner-010", settings=settings,
                          message="推荐三门课", language="zh")
    result = tool.invoke(tool.extractor("推荐三门课", context), context)  # type: ignore[misc]
    assert len(result.data) == 3
    assert set(result.data[0]) >= {"id", "title", "subject", "level", "score", "explanation"}
    assert result.summary and result.summary.startswith("为你推荐") and "3. " in result.summary
    assert result.model and result.model.startswith("mentorly-hybrid-rec")
    assert result.model_version and 0 < (result.confidence or 0) <= 1
    with pytest.raises(InvalidInput):
        tool.invoke({"k": 0}, context)
    with pytest.raises(ToolError):
        recommend_resources.invoke({"level": "wizard"}, context)
    with pytest.raises(ToolError, match="catalog"):
        recommend_resources.invoke({}, ToolContext(tenant="empty-tenant", user="u",
                                                   settings=settings))


def test_cli_import_event_for(settings: Settings, status: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_HOME", str(settings.home))
    from assistant.config import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        bad = tmp_path / "bad.csv"
        bad.write_text("id,title,subject,level\n,x,y,beginner\n", encoding="utf-8")
        out = runner.invoke(rec, ["import", str(bad), "--tenant", "cli"])
        assert out.exit_code == 1 and "row 2: missing id" in out.output
        out = runner.invoke(rec, ["import", str(DEMO_CATALOG), "--tenant", "cli", "--json"])
        assert out.exit_code == 0 and json.loads(out.output)["imported"] == 100
        out = runner.invoke(rec, ["event", "--tenant", "cli", "--user", "u1",
                                  "--resource", "nope", "--kind", "view"])
        assert out.exit_code == 1 and "unknown resource" in out.output
        out = runner.invoke(rec, ["event", "--tenant", "cli", "--user", "u1",
                                  "--resource", "cs-101", "--kind", "complete"])
        assert out.exit_code == 0 and "accepted 1" in out.output
        out = runner.invoke(rec, ["for", "u1", "--tenant", "cli", "-k", "4", "--json"])
        assert out.exit_code == 0, out.output
        items = json.loads(out.output)["items"]
        assert len(items) == 4 and "cs-101" not in {i["id"] for i in items}
        out = runner.invoke(rec, ["for", "u1", "--tenant", "nobody-here"])
        assert out.exit_code == 1 and "catalog" in out.output
    finally:
        get_settings.cache_clear()


def test_scores_are_ranked_and_finite(settings: Settings, status: str) -> None:
    result = recommend(TENANT, "learner-020", k=10, subject="computer science", settings=settings)
    scores = [r.score for r in result.items]
    assert scores == sorted(scores, reverse=True) and np.all(np.isfinite(scores))
