"""The UI's chat generator, called directly, over the real agent with the scripted LLM."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import pytest

from assistant.config import load_settings
from assistant.events import Done, ErrorEvent, SourcesEvent, StepFinished, StepStarted, TextDelta
from assistant.llm.fake import FakeBackend
from assistant.reasons import Reason as R
from assistant.reasons import render, route_fields
from assistant.runtime import Runtime, build_runtime
from tests.test_ui_support import (
    answer_text,
    as_dicts,
    broken_png,
    cat_png,
    make_runtime,
    steps,
)
from ui.chat import (
    PageState,
    TurnView,
    format_provenance,
    is_new_conversation,
    make_chat_fn,
    message_parts,
    normalize_history,
)


def _request(session: str = "session-a", username: str | None = None) -> gr.Request:
    return gr.Request(session_hash=session, username=username)


def _conversation(output: tuple[list, str]) -> str | None:
    """The conversation a chat output's page state continues."""
    return PageState.decode(output[1]).conversation_id


@pytest.fixture(scope="module")
def text_runtime(tmp_path_factory: pytest.TempPathFactory):
    """No tools: every turn is a direct (scripted) answer; no router or embedder loads."""
    return make_runtime(tmp_path_factory.mktemp("ui-chat-text"))


@pytest.fixture(scope="module")
def image_runtime(tmp_path_factory: pytest.TempPathFactory):
    """One real image tool; an attached image routes to it without the classifier."""
    return make_runtime(tmp_path_factory.mktemp("ui-chat-image"), with_image_tool=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ui-chat-files")
    return {"cat": cat_png(d), "broken": broken_png(d)}


def _conversation_count(runtime: Runtime) -> int:
    from sqlalchemy import text

    with runtime.db.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM conversations")).scalar_one()


# --- history normalisation ------------------------------------------------------------------


def test_both_history_shapes_normalise_to_the_same_items() -> None:
    from_ui = [
        {"role": "user", "content": [{"type": "file", "file": {"path": "/tmp/a.png"}},
                                     {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "metadata": {"title": "Used tool: x", "status": "done"},
         "content": [{"type": "text", "text": "step body"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    ]
    from_api = [
        {"role": "user", "content": [{"path": "/tmp/a.png"}, "What is this?"]},
        {"role": "assistant", "metadata": {"title": "Used tool: x", "status": "done"},
         "content": "step body"},
        {"role": "assistant", "content": "A cat."},
    ]
    ui_items, api_items = normalize_history(from_ui), normalize_history(from_api)
    assert ui_items == api_items
    assert ui_items[0].files == ("/tmp/a.png",) and ui_items[0].text == "What is this?"
    assert [i.is_step for i in ui_items] == [False, True, False]
    objects = [gr.ChatMessage(role="user", content="hi"), gr.ChatMessage(content="hello")]
    assert [(i.role, i.text) for i in normalize_history(objects)] == [("user", "hi"),
                                                                      ("assistant", "hello")]
    assert is_new_conversation([]) and is_new_conversation(None)
    assert not is_new_conversation(from_api)


def test_message_parts_accepts_the_multimodal_value_and_plain_text() -> None:
    assert message_parts({"text": "hi", "files": ["/a.png", {"path": "/b.png"}]}) == (
        "hi", ["/a.png", "/b.png"])
    assert message_parts("plain") == ("plain", [])
    assert message_parts(None) == ("", [])


# --- rendering events -----------------------------------------------------------------------


def test_turn_view_shows_steps_provenance_answer_and_sources() -> None:
    view = TurnView("en")
    view.apply(StepStarted("s1", "image_colours", {"upload": "u1"}, "image attached"))
    pending = steps(view.messages())
    assert pending[0]["metadata"]["status"] == "pending"
    assert pending[0]["metadata"]["title"] == "Using tool: image_colours"
    view.apply(StepFinished("s1", "image_colours", True, "mostly red",
                            provenance={"model": "m-1", "model_version": "2.0",
                                        "confidence": 0.875, "tool_version": "0.3.0"},
                            duration_ms=1234.0))
    view.apply(TextDelta("It is "))
    view.apply(TextDelta("red [1]."))
    view.apply(SourcesEvent([{"title": "Colours", "text": "Red is warm.",
                              "uri": "https://example.org/c", "score": 0.5, "metadata": {}}]))
    messages = as_dicts(view.messages())
    step, answer, sources = messages
    assert step["metadata"] == {"id": "s1", "title": "Used tool: image_colours",
                                "status": "done", "duration": 1.23}
    assert "mostly red" in step["content"] and "`m-1`" in step["content"]
    assert "version 2.0" in step["content"] and "87.5%" in step["content"]
    assert answer == {"role": "assistant", "content": "It is red [1].", "metadata": {}}
    assert sources["metadata"]["title"] == "Sources (1)"
    assert "[Colours](https://example.org/c)" in sources["content"]


def test_turn_view_in_chinese_and_with_failures() -> None:
    view = TurnView("zh")
    view.apply(StepStarted("s1", "sentiment", {}, ""))
    view.apply(StepFinished("s1", "sentiment", False, "抱歉", error="timeout"))
    view.apply(ErrorEvent("语言模型暂时不可用"))
    step, answer = as_dicts(view.messages())
    assert step["metadata"]["title"] == "工具出错：sentiment"
    assert "错误：" in step["content"] and "timeout" in step["content"]
    assert answer["content"] == "抱歉，出错了：语言模型暂时不可用"
    # a source with a non-web uri is listed by title, never as a link
    view.apply(SourcesEvent([{"title": "notes.md", "uri": "file:///etc/passwd", "text": ""}]))
    assert "(file://" not in as_dicts(view.messages())[-1]["content"]


def test_provenance_leaves_out_what_the_tool_did_not_report() -> None:
    assert format_provenance({}, "en") == ""
    assert format_provenance({"model": "m", "confidence": None}, "en") == "Model: `m`"
    assert format_provenance({"confidence": 3.5}, "zh") == "置信度 3.5"


# --- the chat function over the real agent -------------------------------------------------


def test_a_text_turn_streams_cumulative_output_and_keeps_the_conversation(text_runtime) -> None:
    runtime, backend = text_runtime
    backend.add("Photosynthesis turns light into sugar.", "You asked about photosynthesis.")
    chat = make_chat_fn(runtime)
    outputs = list(chat({"text": "What is photosynthesis?", "files": []}, [], "en", "",
                        _request("s1")))
    texts = [answer_text(o) for o in outputs]
    assert len(outputs) >= 4  # one yield per streamed piece, then the final state
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    assert texts[-1] == "Photosynthesis turns light into sugar."
    first_id = _conversation(outputs[-1])
    assert first_id is not None

    history = [{"role": "user", "content": "What is photosynthesis?"},
               {"role": "assistant", "content": texts[-1]}]
    # the page sends its state back with the next message; no session is needed
    final = list(chat("What did I ask?", history, "en", outputs[-1][1], _request("another")))[-1]
    assert answer_text(final) == "You asked about photosynthesis."
    assert _conversation(final) == first_id  # same conversation on the second turn
    sent = backend.requests[-1].messages
    assert {"role": "assistant", "content": "Photosynthesis turns light into sugar."} in sent

    # an empty chat (the user pressed "clear") starts a new conversation, for the same visitor
    again = list(chat("Hello again", [], "en", final[1], _request("s1")))[-1]
    assert _conversation(again) not in (None, first_id)
    assert PageState.decode(again[1]).visitor == PageState.decode(final[1]).visitor


def test_pages_do_not_share_conversations(text_runtime) -> None:
    runtime, _ = text_runtime
    chat = make_chat_fn(runtime)
    alice = list(chat("hello", [], "en", "", _request("alice")))[-1]
    bob = list(chat("hello", [], "en", "", _request("bob")))[-1]
    assert _conversation(alice) and _conversation(bob) and _conversation(alice) != _conversation(bob)
    assert PageState.decode(alice[1]).visitor != PageState.decode(bob[1]).visitor


def test_page_state_decoding_refuses_what_it_did_not_make() -> None:
    state = PageState.new().with_conversation("0123abcd")
    assert PageState.decode(state.encode()) == state
    assert PageState.decode(state.visitor + ".") == PageState(state.visitor)
    for junk in ("", None, 42, "not-a-visitor.abc", "ABCDEF.x"):
        decoded = PageState.decode(junk)
        assert decoded.conversation_id is None and re.fullmatch("[0-9a-f]{32}", decoded.visitor)
        assert decoded.visitor != state.visitor
    assert PageState.decode(state.visitor + "./etc/passwd") == PageState(state.visitor)


def test_an_image_turn_saves_the_upload_and_shows_the_tool_step(image_runtime, images) -> None:
    runtime, backend = image_runtime
    backend.add("The picture is 451×300 and mostly red.")
    chat = make_chat_fn(runtime)
    outputs = list(chat({"text": "What is in this picture?", "files": [str(images["cat"])]},
                        [], "en", _request()))
    statuses = [s["metadata"]["status"] for o in outputs for s in steps(o)]
    assert statuses[0] == "pending" and statuses[-1] == "done"
    step = steps(outputs[-1])[0]
    assert step["metadata"]["title"] == "Used tool: image_colours"
    assert "451×300 pixels, mostly red" in step["content"]
    assert "`pillow-mean-colour`" in step["content"] and "tool version 0.3.0" in step["content"]
    assert answer_text(outputs[-1]) == "The picture is 451×300 and mostly red."
    # the file reached the tool through the upload store, not from the Gradio temp path
    stored = sorted(p for p in (runtime.settings.uploads_dir / "default").glob("*.png"))
    assert stored and stored[-1].read_bytes() == images["cat"].read_bytes()


def test_a_bad_upload_becomes_a_message_and_runs_nothing(image_runtime, images) -> None:
    runtime, backend = image_runtime
    before = (_conversation_count(runtime), len(backend.requests))
    chat = make_chat_fn(runtime)
    outputs = list(chat({"text": "what is it?", "files": [str(images["broken"])]}, [], "zh",
                        _request()))
    assert len(outputs) == 1
    text = answer_text(outputs[0])
    assert text.startswith("无法使用文件 **broken.png**：") and "换一个文件" in text
    assert (_conversation_count(runtime), len(backend.requests)) == before


def test_empty_messages_and_model_failures_are_messages_not_exceptions(text_runtime) -> None:
    runtime, backend = text_runtime
    chat = make_chat_fn(runtime)
    assert answer_text(list(chat({"text": "  ", "files": []}, [], "en"))[-1]) == (
        "Please type a question or attach an image.")
    backend.add({"error": "the model server is down"})
    final = list(chat("Explain gravity", [], "en", _request("s9")))[-1]
    assert "the model server is down" in answer_text(final)


def test_a_crash_inside_the_agent_is_logged_and_answered_generically(
        text_runtime, caplog: pytest.LogCaptureFixture) -> None:
    runtime, _ = text_runtime

    class Exploding:
        settings = runtime.settings
        uploads = runtime.uploads

        class agent:  # noqa: N801 - mimics the attribute
            @staticmethod
            def run(message, **kwargs):
                yield TextDelta("partial ")
                raise RuntimeError("secret internal detail")

    final = list(make_chat_fn(Exploding())("hi", [], "en", ""))[-1]
    text = answer_text(final)
    assert text.startswith("partial") and "something went wrong on our side" in text
    assert "secret internal detail" not in text
    assert "chat turn failed" in caplog.text


def test_done_text_wins_over_the_streamed_pieces() -> None:
    view = TurnView("en")
    view.apply(TextDelta("draft"))
    view.apply(Done(text="final", tools=[], sources=[], conversation_id="c"))
    assert answer_text(view.messages()) == "final"


@pytest.mark.parametrize("reasons, english, chinese", [
    ([R.of("image_attached")], "image attached", "附有图片"),
    ([R.of("classifier")], "classifier", "意图分类器选中"),
    ([R.of("classifier_none"), R.of("fallback", tool="knowledge_search")],
     "classifier: no tool; fallback: knowledge_search", "意图分类：不需要工具；改用 knowledge_search 查找"),
    ([R.of("below_threshold", threshold=0.5, tool="classify_text", confidence=0.3141)],
     "below threshold 0.5 (classify_text 0.31)", "置信度低于阈值 0.5（classify_text 0.31）"),
    ([R.of("needs_image", tool="look_at_image")],
     "look_at_image needs an image; none attached", "look_at_image 需要图片，但没有附图"),
    ([R.of("native", why=R.of("router", confidence=0.871))],
     "native: router 0.87", "模型调用工具：路由置信度 0.87"),
    ([R.of("classifier"), R.of("nothing_relevant")], "classifier; nothing relevant",
     "意图分类器选中；没有找到相关内容"),
    ([R.of("classifier"), R.of("router_choice", tool="suggest_next", confidence=0.62),
      R.of("general_no_tool")], "classifier (suggest_next 0.62); general request: no tool",
     "意图分类器选中（suggest_next 0.62）；一般性请求：不使用工具"),
])
def test_route_reasons_are_codes_rendered_in_the_page_language(
        reasons: list[R], english: str, chinese: str) -> None:
    route = route_fields(reasons)
    assert route["reason"] == english  # what API clients have always read
    assert json.loads(json.dumps(route["reasons"])) == route["reasons"]
    assert [R.from_dict(r) for r in route["reasons"]] == reasons
    assert render(reasons, "zh") == chinese
    view = TurnView("zh")
    view.apply(StepStarted("s1", "knowledge_search", {}, route["reason"], route["reasons"]))
    assert f"**原因：** {chinese}" in as_dicts(view.messages())[0]["content"]


def test_a_reason_without_codes_is_shown_as_written() -> None:
    view = TurnView("zh")
    view.apply(StepStarted("s1", "knowledge_search", {}, "a plugin's own words"))
    assert "**原因：** a plugin's own words" in as_dicts(view.messages())[0]["content"]


# --- replicas: the page state, not the process, carries the conversation -------------------


def _replica(home: Path, db_url: str, shared: Path, answers: list[str]) -> tuple[Runtime, FakeBackend]:
    """One ``mentorly serve`` of several: its own home, the shared database and folder."""
    settings = load_settings(home=home, database_url=db_url, shared_dir=shared, plugins=[],
                             llm={"backend": "fake"})
    backend = FakeBackend(script=list(answers))
    return build_runtime(settings, backend=backend), backend


def _stored(runtime: Runtime, conversation_id: str) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in runtime.db.messages("default", conversation_id)
            if m.role in ("user", "assistant")]


def test_a_conversation_started_on_one_replica_continues_on_another(
        db_url: str, tmp_path: Path) -> None:
    a, _ = _replica(tmp_path / "a", db_url, tmp_path / "shared",
                    ["Photosynthesis turns light into sugar."])
    b, backend_b = _replica(tmp_path / "b", db_url, tmp_path / "shared",
                            ["You asked about photosynthesis."])
    first = list(make_chat_fn(a)({"text": "What is photosynthesis?", "files": []}, [], "en", "",
                                 _request("s1")))[-1]
    conversation = _conversation(first)
    assert conversation is not None and answer_text(first) == "Photosynthesis turns light into sugar."

    history = [{"role": "user", "content": "What is photosynthesis?"},
               {"role": "assistant", "content": answer_text(first)}]
    second = list(make_chat_fn(b)("What did I ask?", history, "en", first[1], _request("s1")))[-1]
    assert answer_text(second) == "You asked about photosynthesis."
    assert _conversation(second) == conversation
    sent = backend_b.requests[-1].messages  # the agent on B read the first turn from the database
    assert {"role": "user", "content": "What is photosynthesis?"} in sent
    assert {"role": "assistant", "content": "Photosynthesis turns light into sugar."} in sent
    assert _stored(b, conversation) == [
        ("user", "What is photosynthesis?"), ("assistant", "Photosynthesis turns light into sugar."),
        ("user", "What did I ask?"), ("assistant", "You asked about photosynthesis.")]


def test_a_conversation_id_from_another_page_starts_a_new_conversation(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, _ = _replica(tmp_path / "a", db_url, tmp_path / "shared", ["Noted: tulip."])
    b, backend_b = _replica(tmp_path / "b", db_url, tmp_path / "shared",
                            ["Hello!", "Hi Alice!", "Welcome!"])
    victim = list(make_chat_fn(a)("My secret word is tulip", [], "en", "", _request("v")))[-1]
    victim_id = _conversation(victim)
    assert victim_id is not None
    chat_b = make_chat_fn(b)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]

    # another page that copied the id (its own visitor), a login holding the victim's whole
    # state, and an id nobody made: each gets a conversation of its own, and no history
    forged = PageState.new().with_conversation(victim_id).encode()
    for state, request in ((forged, _request("x")), (victim[1], _request("y", username="alice")),
                           (PageState.new().with_conversation("f" * 32).encode(), _request("z"))):
        out = list(chat_b("What did I say before?", history, "en", state, request))[-1]
        assert _conversation(out) not in (None, victim_id, "f" * 32)
        assert "tulip" not in json.dumps(backend_b.requests[-1].messages, ensure_ascii=False)
    assert _stored(a, victim_id) == [("user", "My secret word is tulip"),
                                     ("assistant", "Noted: tulip.")]  # nothing was added to it
    assert "not its learner's" in caplog.text
