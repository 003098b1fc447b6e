"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1.

1. ``tests/support/openai_server.py`` in a subprocess (uvicorn + FastAPI over the scripted fake):
   deterministic tool calls, streamed argument fragments, auth, errors, timeouts. The official
   ``openai`` client reads the same server, so its wire format is checked independently.
2. llama.cpp's own HTTP server (the one embedded in xllamacpp) over the real packaged model.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from assistant.config import Settings, load_settings
from assistant.errors import ModelError
from assistant.llm.base import ChatBackend
from assistant.llm.factory import make_backend
from assistant.llm.local import LocalBackend
from assistant.llm.openai_compat import OpenAICompatBackend
from tests.support.openai_process import openai_server

API_KEY = "test-key-123"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "classify_text",
            "description": "Classify the sentiment of a text",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    }
]
SCRIPT: list[Any] = [
    "Photosynthesis turns light into sugar.",  # plain chat
    {"content": "", "tool_calls": [{"name": "classify_text", "arguments": {"text": "I love it", "n": 2}}]},
    "Streaming works word by word.",  # plain stream
    {"tool_calls": [{"name": "classify_text", "arguments": {"text": "分数很难"}}]},  # streamed call
    '{"name": "classify_text", "arguments": {"text": "as text"}}',  # a call written as text
    {"error": "backend exploded"},
    "openai client plain",
    {"tool_calls": [{"name": "classify_text", "arguments": {"text": "client"}}]},
    "openai client streamed",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    script = tmp_path_factory.mktemp("openai") / "script.json"
    script.write_text(json.dumps(SCRIPT), encoding="utf-8")
    with openai_server("--script", str(script), "--api-key", API_KEY) as base:
        yield base


def _settings(base_url: str, **llm: Any) -> Settings:
    return load_settings(
        llm={"backend": "openai", "base_url": base_url, "api_key": API_KEY, "model": "test-model", **llm}
    )


@pytest.fixture(scope="module")
def backend(server: str) -> Iterator[OpenAICompatBackend]:
    b = make_backend(_settings(f"{server}/v1/"))
    assert isinstance(b, OpenAICompatBackend) and isinstance(b, ChatBackend)
    yield b
    b.close()


def _last_request(server: str) -> dict[str, Any]:
    return httpx.get(f"{server}/requests").json()[-1]


def test_sequence(server: str, backend: OpenAICompatBackend) -> None:
    """One ordered walk through the script (the server's fake replies are consumed in order)."""
    # 1. plain chat, with the request as sent on the wire
    result = backend.chat(
        [{"role": "user", "content": "What is photosynthesis?"}], max_tokens=20, temperature=0.1
    )
    assert result.content == "Photosynthesis turns light into sugar."
    assert result.tool_calls == [] and result.model == "test-model"
    assert result.usage.completion_tokens == 5 and result.usage.prompt_tokens == 3
    seen = _last_request(server)
    assert seen["authorization"] == f"Bearer {API_KEY}"
    assert seen["body"]["max_tokens"] == 20 and seen["body"]["temperature"] == 0.1
    assert seen["body"]["stream"] is False and "tools" not in seen["body"]

    # 2. native tool call: arguments arrive as a JSON string and come out as a dict
    result = backend.chat([{"role": "user", "content": "classify 'I love it'"}], tools=TOOLS)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("classify_text", {"text": "I love it", "n": 2})
    ]
    assert result.tool_calls[0].id.startswith("call_") and result.finish_reason == "tool_calls"
    assert _last_request(server)["body"]["tools"] == TOOLS

    # 3. streamed text
    chunks = list(backend.stream([{"role": "user", "content": "stream please"}], max_tokens=30))
    texts = [c.text for c in chunks if c.text]
    assert texts == ["Streaming", " works", " word", " by", " word."]
    final = chunks[-1].final
    assert final is not None and final.content == "Streaming works word by word."
    assert final.usage.completion_tokens == 5
    assert _last_request(server)["body"]["stream_options"] == {"include_usage": True}

    # 4. streamed tool call, arguments in fragments
    chunks = list(backend.stream([{"role": "user", "content": "分数很难吗"}], tools=TOOLS))
    final = chunks[-1].final
    assert final is not None
    assert [(c.name, c.arguments) for c in final.tool_calls] == [("classify_text", {"text": "分数很难"})]

    # 5. a call written as text in content (servers without a tool parser)
    result = backend.chat([{"role": "user", "content": "x"}], tools=TOOLS)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("classify_text", {"text": "as text"})]
    assert result.content == ""

    # 6. the server fails: HTTP 500 with the URL and status in the message
    with pytest.raises(ModelError) as info:
        backend.chat([{"role": "user", "content": "boom"}])
    assert f"{server}/v1/chat/completions" in str(info.value) and "HTTP 500" in str(info.value)
    assert "backend exploded" in str(info.value)

    # 7-9. the official openai client reads the same server the same way
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY)
    plain = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.content == "openai client plain"
    call = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], tools=TOOLS
    )
    assert call.choices[0].message.tool_calls is not None
    fn = call.choices[0].message.tool_calls[0].function
    assert (fn.name, json.loads(fn.arguments)) == ("classify_text", {"text": "client"})
    pieces = [
        c.choices[0].delta.content
        for c in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == "openai client streamed" and len(pieces) == 3
    client.close()

    # 10. JSON schema goes out as response_format (the exhausted fake answers a valid instance)
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["a", "b"]}},
        "required": ["label"],
    }
    result = backend.chat([{"role": "user", "content": "pick"}], json_schema=schema)
    assert json.loads(result.content) == {"label": "a"}
    sent = _last_request(server)["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_wrong_api_key_is_a_model_error_with_status(server: str) -> None:
    bad = OpenAICompatBackend(_settings(f"{server}/v1", api_key="nope"))
    with pytest.raises(ModelError, match=r"answered HTTP 401: .*Invalid API Key"):
        bad.chat([{"role": "user", "content": "hi"}])
    with pytest.raises(ModelError, match="HTTP 401"):
        list(bad.stream([{"role": "user", "content": "hi"}]))
    bad.close()


def test_timeout_is_a_model_error(server: str) -> None:
    slow = OpenAICompatBackend(_settings(f"{server}/v1", model="slow:2", timeout_s=0.3))
    with pytest.raises(ModelError, match=r"/v1/chat/completions timed out after 0.3 s"):
        slow.chat([{"role": "user", "content": "hi"}])
    slow.close()


def test_connection_refused_is_a_model_error_naming_the_url() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/v1"
    dead = OpenAICompatBackend(_settings(url, timeout_s=5))
    with pytest.raises(ModelError, match=rf"cannot connect to the LLM server at {url}/chat/completions"):
        dead.chat([{"role": "user", "content": "hi"}])
    with pytest.raises(ModelError, match="cannot connect"):
        list(dead.stream([{"role": "user", "content": "hi"}]))
    dead.close()


@pytest.mark.slow
def test_against_llama_cpp_server_with_the_real_model() -> None:
    """llama.cpp's own OpenAI-compatible HTTP server (embedded in xllamacpp), real model."""
    local = make_backend(load_settings(llm={"backend": "local", "threads": 1}))
    assert isinstance(local, LocalBackend)
    settings = load_settings(
        llm={"backend": "openai", "base_url": local.http_base_url, "api_key": local.http_api_key}
    )
    remote = OpenAICompatBackend(settings)
    question = [{"role": "user", "content": "What is 3 + 4? Answer with the number only."}]
    result = remote.chat(question, max_tokens=6, temperature=0.0)
    assert "7" in result.content and result.usage.completion_tokens > 0
    assert result.content == local.chat(question, max_tokens=6, temperature=0.0).content
    chunks = list(
        remote.stream([{"role": "user", "content": "List three fruits."}], max_tokens=12, temperature=0.0)
    )
    texts = [c.text for c in chunks if c.text]
    final = chunks[-1].final
    assert len(texts) > 1 and final is not None and "".join(texts) == final.content
    assert final.usage.completion_tokens >= len(texts)
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    data = json.loads(remote.chat(question, json_schema=schema, max_tokens=20, temperature=0.0).content)
    assert isinstance(data["answer"], int)
    unauthorised = OpenAICompatBackend(
        load_settings(llm={"backend": "openai", "base_url": local.http_base_url, "api_key": "wrong"})
    )
    with pytest.raises(ModelError, match="HTTP 401"):
        unauthorised.chat(question, max_tokens=2)
    remote.close()
    unauthorised.close()
