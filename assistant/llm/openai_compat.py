"""A backend for any OpenAI-compatible ``/chat/completions`` server (vLLM, llama.cpp server, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from assistant.config import Settings
from assistant.errors import ModelError
from assistant.llm.base import ChatChunk, ChatResult, Message
from assistant.llm.local import json_schema_format
from assistant.llm.sanitize import neutral_messages
from assistant.llm.toolcalls import StreamAssembler, parse_message, usage_from


class OpenAICompatBackend:
    name = "openai"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.base_url = settings.llm.base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = settings.llm.model
        headers = {"Accept": "application/json"}
        key = settings.llm.api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(settings.llm.timeout_s), transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def _body(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        json_schema: dict[str, Any] | None,
        max_tokens: int | None,
        temperature: float | None,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": neutral_messages(messages),
            "max_tokens": max_tokens or self.settings.llm.max_tokens,
            "temperature": self.settings.llm.temperature if temperature is None else temperature,
            "stream": stream,
        }
        if tools:
            body["tools"] = tools
        if json_schema is not None:
            body["response_format"] = json_schema_format(json_schema)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _http_error(self, exc: httpx.HTTPError) -> ModelError:
        if isinstance(exc, httpx.TimeoutException):
            return ModelError(
                f"the LLM server at {self.url} timed out after {self.settings.llm.timeout_s:g} s"
            )
        if isinstance(exc, httpx.ConnectError):
            return ModelError(f"cannot connect to the LLM server at {self.url}: {exc}")
        return ModelError(f"request to the LLM server at {self.url} failed: {exc}")

    def _status_error(self, response: httpx.Response) -> ModelError:
        detail = response.text.strip().replace("\n", " ")[:300]
        return ModelError(f"the LLM server at {self.url} answered HTTP {response.status_code}: {detail}")

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatResult:
        body = self._body(messages, tools, json_schema, max_tokens, temperature, False)
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise self._http_error(exc) from exc
        if not response.is_success:
            raise self._status_error(response)
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError(
                f"the LLM server at {self.url} sent an unexpected answer: {response.text[:200]}"
            ) from exc
        content, calls = parse_message(message.get("content"), message.get("tool_calls"), tools)
        return ChatResult(
            content=content,
            tool_calls=calls,
            usage=usage_from(data.get("usage")),
            model=str(data.get("model") or self.model),
            finish_reason="tool_calls" if calls else str(choice.get("finish_reason") or "stop"),
        )

    def stream(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[ChatChunk]:
        body = self._body(messages, tools, None, max_tokens, temperature, True)
        return self._stream(body, tools)

    def _events(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON objects of an SSE response, up to ``data: [DONE]``."""
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if not response.is_success:
                    response.read()
                    raise self._status_error(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, "event:" lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError as exc:
                        raise ModelError(
                            f"the LLM server at {self.url} sent a malformed event: {data[:200]}"
                        ) from exc
                    if isinstance(event, dict) and event.get("error"):
                        raise ModelError(f"the LLM server at {self.url} failed: {event['error']}")
                    yield event
        except httpx.HTTPError as exc:
            raise self._http_error(exc) from exc

    def _stream(self, body: dict[str, Any], tools: list[dict[str, Any]] | None) -> Iterator[ChatChunk]:
        assembler = StreamAssembler(tools, self.model)
        for event in self._events(body):
            for shown in assembler.feed(event):
                yield ChatChunk(text=shown)
        rest, result = assembler.close()
        if rest:
            yield ChatChunk(text=rest)
        yield ChatChunk(final=result)
