"""A scripted backend for tests and demos: replies come from a list, in order.

Each script entry is a string, or ``{"content": ..., "tool_calls": [{"name": ..., "arguments":
{...}}]}``, or ``{"error": "message"}`` (raises ModelError, to test failure paths). When the
script runs out, the backend answers deterministically: a JSON-schema request gets a minimal
valid instance, anything else an echo of the last user message, in its language.

``delay_s`` (tests of concurrency) makes every streamed piece arrive that many seconds after
the previous one, so a turn takes a known time.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import ConfigError, ModelError
from assistant.llm.base import ChatChunk, ChatResult, Message, ToolCall, Usage
from assistant.llm.toolcalls import new_call_id

FAKE_MODEL = "fake-scripted"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# A word with its trailing spaces, or one CJK character (CJK text has no spaces).
_PIECES = re.compile(
    r"\s*[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef]"
    r"|\s*[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef]+"
    r"|\s+"
)


@dataclass
class FakeReply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    error: str | None = None


@dataclass
class FakeRequest:
    """What the backend was asked, kept for assertions."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None
    json_schema: dict[str, Any] | None
    max_tokens: int | None
    temperature: float | None
    stream: bool


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def split_words(text: str) -> list[str]:
    """Stream pieces: words with their leading spaces, single CJK characters; joins back exactly."""
    return _PIECES.findall(text)


def parse_entry(entry: Any, position: int) -> FakeReply:
    if isinstance(entry, str):
        return FakeReply(content=entry)
    if not isinstance(entry, dict):
        raise ConfigError(f"fake script entry {position} must be a string or an object")
    if "error" in entry:
        return FakeReply(error=str(entry["error"]))
    content = entry.get("content") or ""
    if not isinstance(content, str):
        raise ConfigError(f"fake script entry {position}: content must be a string")
    calls: list[ToolCall] = []
    for call in entry.get("tool_calls") or ():
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ConfigError(f"fake script entry {position}: each tool call needs a name")
        args = call.get("arguments", {})
        if not isinstance(args, dict):
            raise ConfigError(f"fake script entry {position}: tool call arguments must be an object")
        calls.append(ToolCall(name=call["name"], arguments=args, id=call.get("id") or new_call_id()))
    return FakeReply(content=content, tool_calls=calls)


def load_script(path: Path) -> list[Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the fake LLM script {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"the fake LLM script {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigError(f"the fake LLM script {path} must be a JSON list of replies")
    return data


def minimal_instance(schema: dict[str, Any], text: str = "") -> Any:
    """A small deterministic value that satisfies common JSON-schema shapes."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0], text)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        required = schema.get("required", list(props))
        return {name: minimal_instance(props.get(name, {}), text) for name in required}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [minimal_instance(schema.get("items") or {}, text) for _ in range(count)]
    if kind == "string":
        return text[: schema["maxLength"]] if "maxLength" in schema else text
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0.0))
    if kind == "boolean":
        return False
    return None


def _text_of(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def echo_reply(messages: list[Message]) -> str:
    last = next((_text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")
    if has_cjk(last):
        return f"（模拟回答）你说：{last}"
    return f"(fake reply) You said: {last}"


class FakeBackend:
    name = "fake"

    def __init__(self, settings: Settings | None = None, script: list[Any] | None = None, *,
                 delay_s: float = 0.0) -> None:
        if script is None and settings is not None and settings.llm.fake_script is not None:
            script = load_script(settings.llm.fake_script)
        self._replies = [parse_entry(e, i) for i, e in enumerate(script or ())]
        self.model = FAKE_MODEL
        self.requests: list[FakeRequest] = []
        self.delay_s = delay_s  # seconds before each streamed piece
        self._lock = threading.Lock()

    def add(self, *entries: Any) -> None:
        """Append replies to the script."""
        with self._lock:
            start = len(self._replies)
            self._replies.extend(parse_entry(e, start + i) for i, e in enumerate(entries))

    @property
    def remaining(self) -> int:
        return len(self._replies)

    def _next(self, request: FakeRequest) -> FakeReply:
        with self._lock:
            self.requests.append(request)
            if self._replies:
                reply = self._replies.pop(0)
            elif request.json_schema is not None:
                last = echo_reply(request.messages)
                reply = FakeReply(content=json.dumps(minimal_instance(request.json_schema, last)))
            else:
                reply = FakeReply(content=echo_reply(request.messages))
        if reply.error is not None:
            raise ModelError(reply.error)
        return reply

    def _result(self, messages: list[Message], reply: FakeReply) -> ChatResult:
        prompt = sum(len(split_words(_text_of(m))) for m in messages)
        return ChatResult(
            content=reply.content,
            tool_calls=list(reply.tool_calls),
            usage=Usage(prompt_tokens=prompt, completion_tokens=len(split_words(reply.content))),
            model=self.model,
            finish_reason="tool_calls" if reply.tool_calls else "stop",
        )

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatResult:
        request = FakeRequest(list(messages), tools, json_schema, max_tokens, temperature, False)
        return self._result(messages, self._next(request))

    def stream(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[ChatChunk]:
        request = FakeRequest(list(messages), tools, None, max_tokens, temperature, True)
        reply = self._next(request)
        return self._stream(messages, reply)

    def _stream(self, messages: list[Message], reply: FakeReply) -> Iterator[ChatChunk]:
        for piece in split_words(reply.content):
            if self.delay_s > 0:
                time.sleep(self.delay_s)
            yield ChatChunk(text=piece)
        yield ChatChunk(final=self._result(messages, reply))
