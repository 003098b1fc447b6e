"""The embedded backend: a GGUF model run in-process by llama.cpp (``xllamacpp``).

``xllamacpp.Server.handle_chat_completions`` takes an OpenAI-style request. With
``"stream": True`` it calls a callback with each SSE chunk (as a dict) while it generates,
on the calling thread; returning True from the callback stops generation. :meth:`stream`
runs the call on a worker thread and hands the chunks over through a queue, so tokens reach
the caller as they are decoded, and closing the iterator early cancels the generation.

The server runs ``[llm] parallel`` slots with continuous batching: that many conversations
are decoded together, each with its own ``n_ctx`` of context. A semaphore of the same size
keeps calls from queueing inside llama.cpp (where nobody could see or bound the wait); the
turn gate (``assistant.admission``) keeps turns from reaching it in the first place. The
prompt cache in host memory (``prompt_cache_mib``) lets any slot reuse a conversation's
earlier prefix.
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import InvalidInput, ModelError
from assistant.llm.base import ChatChunk, ChatResult, Message, Usage
from assistant.llm.model_files import MODEL_NAME, default_model_file, prepare_model
from assistant.llm.sanitize import neutral_messages
from assistant.llm.toolcalls import StreamAssembler, parse_message

_END = object()


def model_label(path: Path, settings: Settings) -> str:
    """Name recorded for provenance: the packaged model's name, else the file's stem."""
    if settings.llm.model_path is None and path == default_model_file(settings):
        return MODEL_NAME
    return path.stem


def json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``response_format`` asking for output constrained to ``schema``."""
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


def raise_for_error(payload: Any, where: str) -> None:
    """Turn an error object from llama.cpp into InvalidInput (4xx) or ModelError."""
    if not isinstance(payload, dict):
        raise ModelError(f"{where}: unexpected response {payload!r:.200}")
    error = payload.get("error")
    if error is None and "code" in payload and "message" in payload and "choices" not in payload:
        error = payload
    if error is None:
        return
    if isinstance(error, dict):
        code = int(error.get("code") or 500)
        message = str(error.get("message") or error)
        kind = error.get("type", "error")
    else:
        code, message, kind = 500, str(error), "error"
    if kind == "exceed_context_size_error":
        raise InvalidInput(f"the conversation is too long for the model: {message}")
    if 400 <= code < 500:
        raise InvalidInput(f"{where} rejected the request ({kind}): {message}")
    raise ModelError(f"{where} failed ({kind}): {message}")


class LocalBackend:
    """Chat with a local GGUF model; ``[llm] parallel`` requests at once (llama.cpp slots)."""

    name = "local"

    def __init__(self, settings: Settings, *, progress: bool = True) -> None:
        self.settings = settings
        self.path = prepare_model(settings, progress=progress)
        self.model = model_label(self.path, settings)
        self.threads = settings.llm.threads
        self.n_ctx = settings.llm.n_ctx  # per slot: each conversation gets the whole of it
        self.parallel = settings.llm.parallel
        # The embedded llama.cpp server also listens on 127.0.0.1 (random port); a random key
        # keeps other local users off it. In-process calls do not go through that check.
        self.http_api_key = secrets.token_urlsafe(24)
        # llama.cpp reuses the longest cached prompt prefix; benchmarks turn it off for cold runs.
        self.cache_prompt = True
        self._slots = threading.BoundedSemaphore(self.parallel)
        self._count_lock = threading.Lock()
        self._in_use = 0
        self._server = self._load()

    def _load(self) -> Any:
        try:
            import xllamacpp as xlc
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelError(f"xllamacpp is not installed: {exc}") from exc
        params = xlc.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = self.n_ctx * self.parallel  # llama.cpp splits n_ctx among the slots
        params.n_parallel = self.parallel
        params.cont_batching = True
        params.cache_ram_mib = self.settings.llm.prompt_cache_mib
        params.use_jinja = True
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = -1
        params.api_keys = [self.http_api_key]
        try:
            return xlc.Server(params)
        except Exception as exc:
            raise ModelError(
                f"could not load the model {self.path} (is it a valid GGUF file?): {exc}"
            ) from exc

    @property
    def http_base_url(self) -> str:
        """The embedded llama.cpp server's OpenAI-compatible base URL (``.../v1``)."""
        return str(self._server.listening_address).rstrip("/") + "/v1"

    def _request(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        json_schema: dict[str, Any] | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        if not messages:
            raise InvalidInput("no messages to send to the model")
        request: dict[str, Any] = {
            "messages": neutral_messages(messages),
            "max_tokens": max_tokens or self.settings.llm.max_tokens,
            "temperature": self.settings.llm.temperature if temperature is None else temperature,
            "cache_prompt": self.cache_prompt,
        }
        if tools:
            request["tools"] = tools
        if json_schema is not None:
            request["response_format"] = json_schema_format(json_schema)
        return request

    def _call(self, request: dict[str, Any], callback: Any = None) -> Any:
        try:
            if callback is None:
                return self._server.handle_chat_completions(request)
            return self._server.handle_chat_completions(request, callback)
        except ValueError as exc:  # llama.cpp rejects the request (bad messages, schema, template)
            raise InvalidInput(f"the local model rejected the request: {exc}") from exc
        except Exception as exc:
            raise ModelError(f"the local model failed: {exc}") from exc

    @property
    def in_use(self) -> int:
        """Slots serving a request right now."""
        return self._in_use

    def _acquire(self) -> None:
        if not self._slots.acquire(timeout=self.settings.llm.timeout_s):
            raise ModelError(f"all {self.parallel} slots of the local model stayed busy for "
                             f"{self.settings.llm.timeout_s:.0f} s")
        with self._count_lock:
            self._in_use += 1

    def _release(self) -> None:
        with self._count_lock:
            self._in_use -= 1
        self._slots.release()

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatResult:
        request = self._request(messages, tools, json_schema, max_tokens, temperature)
        self._acquire()
        try:
            response = self._call(request)
        finally:
            self._release()
        raise_for_error(response, "the local model")
        try:
            choice = response["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"the local model returned no choice: {response!r:.200}") from exc
        content, calls = parse_message(message.get("content"), message.get("tool_calls"), tools)
        usage = response.get("usage") or {}
        return ChatResult(
            content=content,
            tool_calls=calls,
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            model=self.model,
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
        request = self._request(messages, tools, None, max_tokens, temperature)
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
        return self._stream(request, tools)

    def _stream(self, request: dict[str, Any], tools: list[dict[str, Any]] | None) -> Iterator[ChatChunk]:
        chunks: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            return cancelled.is_set()

        def worker() -> None:
            try:
                self._acquire()
            except ModelError as exc:
                chunks.put(exc)
                chunks.put(_END)
                return
            try:
                if not cancelled.is_set():
                    self._call(request, on_chunk)
            except Exception as exc:
                chunks.put(exc)
            finally:
                self._release()
                chunks.put(_END)

        thread = threading.Thread(target=worker, name="mentorly-llm-stream", daemon=True)
        thread.start()
        assembler = StreamAssembler(tools, self.model)
        timeout = self.settings.llm.timeout_s
        try:
            while True:
                try:
                    item = chunks.get(timeout=timeout)
                except queue.Empty:
                    raise ModelError(f"the local model produced nothing for {timeout:.0f} s") from None
                if item is _END:
                    break
                if isinstance(item, Exception):
                    raise item
                raise_for_error(item, "the local model")
                for shown in assembler.feed(item):
                    yield ChatChunk(text=shown)
            rest, result = assembler.close()
            if rest:
                yield ChatChunk(text=rest)
            result.model = self.model
            yield ChatChunk(final=result)
        finally:
            cancelled.set()
