"""Tool calls parsed out of model output: native entries, JSON text, tagged text, fragments."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.llm.toolcalls import (
    TextCallGuard,
    ToolCallDeltas,
    decode_arguments,
    from_native,
    from_text,
    parse_message,
    tool_names,
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "classify_text",
            "description": "Classify a text",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "knowledge_search", "parameters": {}}},
]


def test_tool_names_from_openai_schemas() -> None:
    assert tool_names(TOOLS) == {"classify_text", "knowledge_search"}
    assert tool_names(None) == set()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"text": "hi"}', {"text": "hi"}),
        ({"text": "hi"}, {"text": "hi"}),
        ("", {}),
        (None, {}),
        ("{not json", None),
        ("[1, 2]", None),
        (42, None),
    ],
)
def test_decode_arguments(raw: Any, expected: dict[str, Any] | None) -> None:
    assert decode_arguments(raw) == expected


def test_native_calls_decode_json_string_arguments_and_drop_bad_ones() -> None:
    calls = from_native(
        [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "classify_text", "arguments": '{"text": "good"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "classify_text", "arguments": "{oops"}},
            {"id": "call_3", "type": "function", "function": {"arguments": "{}"}},
        ]
    )
    assert [(c.id, c.name, c.arguments) for c in calls] == [("call_1", "classify_text", {"text": "good"})]


def test_json_text_call_as_the_small_model_writes_it() -> None:
    content = '{"name": "classify_text", "arguments": {"text": "I love this course"}}'
    text, calls = from_text(content, {"classify_text"})
    assert text == ""
    assert len(calls) == 1
    assert calls[0].name == "classify_text"
    assert calls[0].arguments == {"text": "I love this course"}
    assert calls[0].id.startswith("call_")


def test_tagged_call_keeps_the_surrounding_text() -> None:
    content = (
        'Let me check.\n<tool_call>\n{"name": "knowledge_search", "arguments": {"query": "exam dates"}}\n'
        "</tool_call>"
    )
    text, calls = from_text(content, {"knowledge_search"})
    assert text == "Let me check."
    assert [(c.name, c.arguments) for c in calls] == [("knowledge_search", {"query": "exam dates"})]


def test_unterminated_tag_and_parameters_key_and_string_arguments() -> None:
    content = '<tool_call>{"name": "classify_text", "parameters": "{\\"text\\": \\"ok\\"}"}'
    _, calls = from_text(content, None)
    assert [(c.name, c.arguments) for c in calls] == [("classify_text", {"text": "ok"})]


def test_fenced_json_call_and_a_list_of_calls() -> None:
    fenced = '```json\n{"name": "classify_text", "arguments": {"text": "x"}}\n```'
    assert [c.name for c in from_text(fenced, None)[1]] == ["classify_text"]
    listed = (
        '[{"name": "classify_text", "arguments": {}}, '
        '{"name": "knowledge_search", "arguments": {"query": "q"}}]'
    )
    assert [c.name for c in from_text(listed, None)[1]] == ["classify_text", "knowledge_search"]


@pytest.mark.parametrize(
    "content",
    [
        '{"name": "classify_text", "arguments": {"text": "unterminated"',  # invalid JSON
        '{"name": "classify_text", "arguments": [1, 2]}',  # arguments not an object
        "<tool_call>not json</tool_call>",
        'The call would be {"name": "classify_text"} but I answer myself.',  # not only a call
        "",
    ],
)
def test_invalid_calls_are_no_call_and_keep_the_text(content: str) -> None:
    text, calls = from_text(content, None)
    assert calls == []
    assert text == content


def test_text_call_to_a_tool_not_offered_is_not_a_call() -> None:
    content = '{"name": "Ann", "arguments": {"age": 30}}'
    assert from_text(content, {"classify_text"}) == (content, [])


def test_parse_message_prefers_native_and_needs_tools_for_text_calls() -> None:
    content = '{"name": "classify_text", "arguments": {"text": "x"}}'
    assert parse_message(content, None, None) == (content, [])  # no tools offered: it is an answer
    text, calls = parse_message(content, None, TOOLS)
    assert text == "" and calls[0].arguments == {"text": "x"}
    native = [{"id": "c9", "function": {"name": "knowledge_search", "arguments": '{"query": "q"}'}}]
    text, calls = parse_message("thinking", native, TOOLS)
    assert text == "thinking" and [(c.id, c.name) for c in calls] == [("c9", "knowledge_search")]


def test_streamed_tool_call_fragments_accumulate() -> None:
    acc = ToolCallDeltas()
    acc.add(
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "classify_text", "arguments": ""},
            }
        ]
    )
    acc.add([{"index": 0, "function": {"arguments": '{"te'}}])
    acc.add([{"index": 0, "function": {"arguments": 'xt": "fine"}'}}])
    acc.add([{"index": 1, "id": "call_b", "function": {"name": "knowledge_search", "arguments": "{}"}}])
    calls = from_native(acc.native())
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_a", "classify_text", {"text": "fine"}),
        ("call_b", "knowledge_search", {}),
    ]


def _run_guard(pieces: list[str], tools: list[dict[str, Any]] | None) -> tuple[str, str, list[str]]:
    guard = TextCallGuard(tools)
    shown = "".join(guard.feed(p) for p in pieces)
    content, calls, rest = guard.finish(tools)
    return shown + rest, content, [c.name for c in calls]


def test_guard_passes_ordinary_answers_through_as_they_arrive() -> None:
    guard = TextCallGuard(TOOLS)
    assert guard.feed("Hello") == "Hello"
    assert guard.feed(" there") == " there"
    assert guard.finish(TOOLS) == ("Hello there", [], "")


def test_guard_hides_a_call_written_as_text() -> None:
    pieces = ['{"', "name", '": "classify_text", "arguments": {"text": "x"}}']
    shown, content, names = _run_guard(pieces, TOOLS)
    assert (shown, content, names) == ("", "", ["classify_text"])


def test_guard_releases_held_text_that_was_not_a_call() -> None:
    pieces = ["<to", "ol_call> not a call"]
    shown, content, names = _run_guard(pieces, TOOLS)
    assert shown == "<tool_call> not a call" == content
    assert names == []
    shown, _, _ = _run_guard(["<", "b>bold</b>"], TOOLS)  # looked like a tag, was not
    assert shown == "<b>bold</b>"


def test_guard_is_inactive_without_tools() -> None:
    guard = TextCallGuard(None)
    assert guard.feed('{"name": "classify_text", "arguments": {}}') != ""
    assert guard.finish(None)[1] == []
