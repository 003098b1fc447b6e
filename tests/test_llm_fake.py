"""The scripted fake backend: order, tool calls, recorded requests, fallbacks, streaming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.errors import ConfigError, ModelError
from assistant.llm.base import ChatBackend
from assistant.llm.factory import make_backend
from assistant.llm.fake import FakeBackend, minimal_instance, split_words


def test_replies_come_in_order_with_tool_calls_and_requests_are_recorded() -> None:
    fake = FakeBackend(
        script=[
            {"content": "", "tool_calls": [{"name": "classify_text", "arguments": {"text": "great"}}]},
            "It is positive.",
        ]
    )
    assert isinstance(fake, ChatBackend)
    tools = [{"type": "function", "function": {"name": "classify_text", "parameters": {}}}]
    first = fake.chat([{"role": "user", "content": "Is 'great' positive?"}], tools=tools, max_tokens=50)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("classify_text", {"text": "great"})]
    assert first.finish_reason == "tool_calls"
    second = fake.chat([{"role": "user", "content": "so?"}], temperature=0.0)
    assert second.content == "It is positive."
    assert second.tool_calls == []
    assert fake.remaining == 0
    assert [r.tools for r in fake.requests] == [tools, None]
    assert fake.requests[0].max_tokens == 50
    assert fake.requests[1].temperature == 0.0
    assert fake.requests[1].messages[-1]["content"] == "so?"
    assert second.usage.completion_tokens == 3  # "It", " is", " positive."


def test_exhausted_script_echoes_in_the_users_language() -> None:
    fake = FakeBackend()
    en = fake.chat([{"role": "user", "content": "What is a prime number?"}])
    assert "What is a prime number?" in en.content
    assert en.content.startswith("(fake reply)")
    zh = fake.chat([{"role": "system", "content": "be brief"}, {"role": "user", "content": "什么是质数？"}])
    assert "什么是质数？" in zh.content
    assert zh.content.startswith("（模拟回答）")


def test_exhausted_script_answers_json_schema_requests_with_a_valid_instance() -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["pos", "neg"]},
            "score": {"type": "number", "minimum": 0.5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "note": {"type": "string"},
        },
        "required": ["label", "score", "tags"],
    }
    result = FakeBackend().chat([{"role": "user", "content": "classify"}], json_schema=schema)
    data = json.loads(result.content)
    assert data["label"] == "pos" and data["score"] == 0.5 and len(data["tags"]) == 1
    assert "note" not in data
    assert minimal_instance({"type": ["null", "integer"], "minimum": 3}) == 3


def test_stream_goes_word_by_word_and_ends_with_the_final_result() -> None:
    fake = FakeBackend(script=["Fractions are parts of a whole.", "分数是整体的一部分。"])
    chunks = list(fake.stream([{"role": "user", "content": "fractions?"}]))
    texts = [c.text for c in chunks if c.text]
    assert texts == ["Fractions", " are", " parts", " of", " a", " whole."]
    assert chunks[-1].final is not None and chunks[-1].final.content == "".join(texts)
    assert all(c.final is None for c in chunks[:-1])
    zh = [c.text for c in fake.stream([{"role": "user", "content": "分数？"}]) if c.text]
    assert len(zh) == len("分数是整体的一部分。") and "".join(zh) == "分数是整体的一部分。"
    assert fake.requests[-1].stream is True


@pytest.mark.parametrize("text", ["a  b\n c ", "mix 中文 and English，好的", "", "   "])
def test_split_words_joins_back_exactly(text: str) -> None:
    assert "".join(split_words(text)) == text


def test_scripted_error_raises_model_error() -> None:
    fake = FakeBackend(script=[{"error": "server overloaded"}, "after"])
    with pytest.raises(ModelError, match="server overloaded"):
        fake.chat([{"role": "user", "content": "hi"}])
    assert fake.chat([{"role": "user", "content": "hi"}]).content == "after"


def test_script_file_through_settings_and_factory(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["one", {"content": "two"}]), encoding="utf-8")
    backend = make_backend(load_settings(llm={"backend": "fake", "fake_script": script}))
    assert isinstance(backend, FakeBackend)
    assert [backend.chat([{"role": "user", "content": "x"}]).content for _ in range(2)] == ["one", "two"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "must be a JSON list"),
        ('[{"tool_calls": [{"arguments": {}}]}]', "needs a name"),
        ("[3]", "must be a string or an object"),
    ],
)
def test_bad_script_files_are_config_errors(tmp_path: Path, content: str, message: str) -> None:
    script = tmp_path / "script.json"
    script.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        FakeBackend(load_settings(llm={"backend": "fake", "fake_script": script}))
    with pytest.raises(ConfigError, match="cannot read"):
        FakeBackend(load_settings(llm={"backend": "fake", "fake_script": tmp_path / "missing.json"}))
