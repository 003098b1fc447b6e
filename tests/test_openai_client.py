"""The official ``openai`` Python client against ``/v1`` on a real loopback server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from assistant.llm.fake import FakeBackend
from tests.support.api_tools import png
from tests.support.live_api import make_runtime, serve


class Env:
    def __init__(self, url: str, app: Any, backend: FakeBackend) -> None:
        self.backend = backend
        key, _ = app.state.keys.create("acme", "chat")
        self.client = OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)
        self.url = url


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    backend = FakeBackend()
    server, app = serve(make_runtime(tmp_path_factory.mktemp("oai"), backend=backend))
    yield Env(server.url, app, backend)
    server.stop()


@pytest.fixture(scope="module")
def with_tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    backend = FakeBackend()
    server, app = serve(make_runtime(tmp_path_factory.mktemp("oai-tools"), backend=backend, tools=True))
    yield Env(server.url, app, backend)
    server.stop()


def test_models_list(plain: Env) -> None:
    assert [m.id for m in plain.client.models.list()] == ["mentorly"]


def test_completion_without_streaming(plain: Env) -> None:
    plain.backend.add("Mitochondria make ATP.")
    done = plain.client.chat.completions.create(
        model="mentorly", temperature=0.2,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What do mitochondria do?"}])
    assert done.object == "chat.completion" and done.model == "mentorly"
    assert done.choices[0].message.content == "Mitochondria make ATP."
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    extra = done.model_extra["mentorly"]  # type: ignore[index]
    assert extra["steps"] == [] and len(extra["conversation_id"]) == 32
    # the extension continues the stored conversation
    plain.backend.add("They are in almost every cell.")
    again = plain.client.chat.completions.create(
        model="mentorly", messages=[{"role": "user", "content": "Where are they?"}],
        extra_body={"conversation_id": extra["conversation_id"]})
    assert again.model_extra["mentorly"]["conversation_id"] == extra["conversation_id"]  # type: ignore[index]
    assert any(m["content"] == "Mitochondria make ATP." for m in plain.backend.requests[-1].messages)


def test_the_conversation_the_client_sends_is_the_history(plain: Env) -> None:
    plain.backend.add("Your name is Ada.")
    done = plain.client.chat.completions.create(model="mentorly", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi, my name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"}])
    assert done.choices[0].message.content == "Your name is Ada."
    sent = plain.backend.requests[-1].messages
    assert {"role": "user", "content": "Hi, my name is Ada."} in sent
    assert {"role": "assistant", "content": "Nice to meet you, Ada."} in sent
    # the client's system message is honoured inside the server's own system prompt, below its
    # rules (#13: it was dropped silently), never as a replacement for it
    assert sent[0]["role"] == "system" and sent[0]["content"].startswith("You are Mentorly")
    assert "<app_instructions>Be brief.</app_instructions>" in sent[0]["content"]
    assert [m for m in sent if m["role"] == "system"] == [sent[0]]
    assert sent[-1]["content"].endswith("What is my name?")


def test_an_over_long_system_message_is_refused_with_the_limit(plain: Env) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        plain.client.chat.completions.create(model="mentorly", messages=[
            {"role": "system", "content": "x" * 4001}, {"role": "user", "content": "Hi"}])
    assert "at most 4,000" in str(caught.value) and "system" in str(caught.value)


def test_completion_streaming(plain: Env) -> None:
    plain.backend.add("Water boils at 100 °C at sea level.")
    stream = plain.client.chat.completions.create(
        model="mentorly", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": "When does water boil?"}]}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Water boils at 100 °C at sea level."
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1 and "steps" in finals[0].model_extra["mentorly"]  # type: ignore[index]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_tool_steps_and_sources_in_the_extension_field(with_tools: Env) -> None:
    image = "data:image/png;base64," + base64.b64encode(png((200, 10, 10))).decode()
    message = [{"type": "text", "text": "What is in this picture?"},
               {"type": "image_url", "image_url": {"url": image}}]
    with_tools.backend.add({"tool_calls": [{"name": "describe_image", "arguments": {}}]},
                           "A red square [1].")
    done = with_tools.client.chat.completions.create(model="mentorly",
                                                     messages=[{"role": "user", "content": message}])
    assert done.choices[0].message.content == "A red square [1]."
    assert done.choices[0].message.tool_calls is None  # tools ran server-side
    ext = done.model_extra["mentorly"]  # type: ignore[index]
    step = ext["steps"][0]
    assert step["tool"] == "describe_image" and step["ok"] and step["result"]["colour"] == "red"
    assert step["provenance"]["model"] == "pixel-stats"
    assert ext["sources"][0]["title"] == "Colour chart"
    with_tools.backend.add({"tool_calls": [{"name": "describe_image", "arguments": {}}]}, "Red again.")
    chunks = list(with_tools.client.chat.completions.create(
        model="mentorly", stream=True, messages=[{"role": "user", "content": message}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Red again."
    final = chunks[-1].model_extra["mentorly"]  # type: ignore[index]
    assert final["steps"][0]["tool"] == "describe_image" and final["sources"]


def test_errors_reach_the_client_as_its_own_exceptions(plain: Env) -> None:
    user = [{"role": "user", "content": "hi"}]
    bad = OpenAI(base_url=plain.url + "/v1", api_key="mk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad.chat.completions.create(model="mentorly", messages=user)  # type: ignore[arg-type]
    assert "malformed" in str(auth.value)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        plain.client.chat.completions.create(model="gpt-4o", messages=user)  # type: ignore[arg-type]
    with pytest.raises(openai.UnprocessableEntityError, match="last message must have role 'user'"):
        plain.client.chat.completions.create(
            model="mentorly", messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    with pytest.raises(openai.UnprocessableEntityError, match="never fetches"):
        plain.client.chat.completions.create(model="mentorly", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://example.org/cat.png"}}]}])
    with pytest.raises(openai.UnprocessableEntityError, match="server-side"):
        plain.client.chat.completions.create(model="mentorly", messages=user,  # type: ignore[arg-type]
                                             tools=[{"type": "function", "function": {"name": "f"}}])
    plain.backend.add({"error": "the model crashed"})
    with pytest.raises(openai.InternalServerError, match="the model crashed"):
        plain.client.chat.completions.create(model="mentorly", messages=user)  # type: ignore[arg-type]
    plain.backend.add({"error": "the model crashed mid-way"})
    with pytest.raises(openai.APIError, match="crashed mid-way"):
        list(plain.client.chat.completions.create(model="mentorly", messages=user, stream=True))  # type: ignore[arg-type]
