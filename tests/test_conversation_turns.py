"""Multi-turn behaviour with the real router, the real built-in tools and a real SQLite file:
elliptical follow-ups keep the previous turn's tool, general requests use none, and the grounded
answer path runs unchanged over an OpenAI-compatible server. The LLM is scripted (its replies
are not what these tests check)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistant.events import Done, StepStarted
from assistant.llm.fake import FakeBackend
from tests.support.openai_process import openai_server as start_openai_server

SYLLABUS = """# CS 214 Data Structures — Syllabus

## Weekly schedule

- Week 2: Arrays and linked lists
- Week 5: Recursion and divide and conquer

## Late work

You have 3 grace days for the whole semester. Grace days cannot be used for the final project.
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from assistant.config import load_settings
    from mentorly_app import build_runtime
    from tools.knowledge_search.service import knowledge_base
    from tools.recommendation import prepare_models

    home = tmp_path_factory.mktemp("turns-home")
    docs = home / "docs"
    docs.mkdir()
    (docs / "syllabus.md").write_text(SYLLABUS, encoding="utf-8")
    settings = load_settings(home=home, knowledge={"load_demo": False})
    backend = FakeBackend(script=["OK."] * 200)
    rt = build_runtime(settings, backend=backend)
    prepare_models(settings, False)  # the demo catalog and learners, for recommendations
    knowledge_base(settings).ingest([docs], settings.default_tenant, "course")
    yield rt


def turn(rt: Any, message: str, conversation: str | None = None,
         user: str = "learner-turns") -> tuple[list[Any], Done]:
    events = list(rt.agent.run(message, user=user, conversation_id=conversation))
    done = events[-1]
    assert isinstance(done, Done), events[-1]
    return events, done


def started(events: list[Any]) -> StepStarted:
    return next(e for e in events if isinstance(e, StepStarted))


def test_and_week_5_keeps_the_knowledge_search_with_the_rewritten_question(runtime) -> None:
    _, first = turn(runtime, "What does week 2 of CS 214 cover?")
    assert first.tools == ["knowledge_search"]
    events, second = turn(runtime, "And week 5?", first.conversation_id)
    assert second.tools == ["knowledge_search"] and second.route["follow_up"]
    assert started(events).arguments["query"] == "What does week 5 of CS 214 cover?"
    assert "Recursion" in second.text and "Arrays" not in second.text
    assert second.answer_mode in ("generated", "quoted")


def test_something_easier_refines_the_recommendation_and_leaves_out_what_was_shown(runtime) -> None:
    _, first = turn(runtime, "Recommend me a course please", user="learner-easier")
    assert first.tools == ["recommend_resources"]
    events, second = turn(runtime, "Something easier than those?", first.conversation_id,
                          user="learner-easier")
    assert second.tools == ["recommend_resources"] and second.route["follow_up"]
    assert started(events).arguments.get("level") == "beginner"
    shown = {line.split(". ", 1)[1].split(" (")[0] for line in first.text.splitlines()
             if line[:1].isdigit() and ". " in line}
    again = {line.split(". ", 1)[1].split(" (")[0] for line in second.text.splitlines()
             if line[:1].isdigit() and ". " in line}
    assert shown and again and not shown & again


def test_na_zhe_ju_ne_classifies_the_new_text_the_same_way(runtime) -> None:
    _, first = turn(runtime, "这句话是什么情感：“老师讲得太好了”", user="learner-zh")
    assert first.tools == ["classify_text"]
    events, second = turn(runtime, "那这句呢：“作业太难了，我快崩溃了”", first.conversation_id,
                          user="learner-zh")
    assert second.tools == ["classify_text"]
    args = started(events).arguments
    assert args["text"] == "作业太难了，我快崩溃了"
    assert args.get("labels") is None and args.get("model") is None  # nothing copied in


def test_a_creative_request_uses_no_tool(runtime) -> None:
    events, done = turn(runtime, "Write a short poem about learning.")
    assert done.tools == [] and not any(isinstance(e, StepStarted) for e in events)
    assert done.answer_mode == "chat"


def test_a_course_price_the_documents_lack_is_not_invented(runtime) -> None:
    _, done = turn(runtime, "How much does the CS 214 textbook cost?")
    assert done.answer_mode == "abstained"
    assert "$" not in done.text and "won't guess" in done.text


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    script = tmp_path_factory.mktemp("openai-grounded") / "script.json"
    script.write_text(json.dumps([
        "No, grace days cannot be used for the final project.",
        "Yes, grace days can be used for the final project.",
    ]), encoding="utf-8")
    with start_openai_server("--script", str(script)) as base:
        yield base


def test_the_grounded_path_runs_unchanged_over_an_openai_compatible_server(
        runtime, openai_server: str) -> None:
    from assistant.agent import Agent
    from assistant.llm.factory import make_backend

    settings = runtime.settings.model_copy(deep=True)
    settings.llm.backend = "openai"
    settings.llm.base_url = f"{openai_server}/v1"
    backend = make_backend(settings)
    agent = Agent(settings=settings, registry=runtime.registry, db=runtime.db,
                  backend=lambda: backend, router=lambda: runtime.router)
    question = "Can I use grace days for the CS 214 final project?"
    done = list(agent.run(question))[-1]
    assert done.answer_mode == "generated"
    assert done.text.startswith("The course documents say:\n> Grace days cannot be used")
    assert done.text.endswith("No, grace days cannot be used for the final project [1].")
    wrong = list(agent.run(question))[-1]  # the server now says "Yes": the check refuses it
    assert wrong.answer_mode == "quoted" and "Yes" not in wrong.text
    sent = httpx.get(f"{openai_server}/requests").json()
    assert "Grace days cannot be used for the final project." in json.dumps(sent[-1]["body"],
                                                                             ensure_ascii=False)


def test_openai_clients_sending_the_whole_conversation_get_follow_ups_too(runtime) -> None:
    from openai import OpenAI

    from tests.support.live_api import serve

    server, app = serve(runtime)
    try:
        key, _ = app.state.keys.create("acme", "chat")
        client = OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)
        done = client.chat.completions.create(model="mentorly", messages=[
            {"role": "user", "content": "这句话是什么情感：“老师讲得太好了”"},
            {"role": "assistant", "content": "这句话是正面的。"},
            {"role": "user", "content": "那这句呢：“作业太难了，我快崩溃了”"}])
        extra = done.model_extra["mentorly"]  # type: ignore[index]
        (step,) = extra["steps"]
        assert step["tool"] == "classify_text" and extra["route"]["follow_up"]
        assert step["arguments"]["text"] == "作业太难了，我快崩溃了"
        assert extra["answer_mode"] == "tool"
    finally:
        server.stop()
