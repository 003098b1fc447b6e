"""``POST /v1/chat/completions`` and ``GET /v1/models``, for clients that speak OpenAI.

The assistant runs its tools server-side: the answer is the message content, and the tool
steps, sources and conversation id travel in an extension field ``mentorly`` that OpenAI clients
ignore (the Python client exposes it as ``completion.model_extra["mentorly"]``). The last
message must be the user's; earlier messages are not replayed: to continue a stored
conversation, pass ``conversation_id`` (``extra_body`` in the Python client). Images are
accepted as ``data:`` URLs in ``image_url`` content parts and go through the upload store.

While a streamed turn waits in line (every model slot busy) or a tool works, the stream carries
SSE comment lines (``: queued position=2 retry_after_s=12``, ``: ping``), which OpenAI clients
skip; when the line is full the answer is 429 with ``Retry-After``, which they retry.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.auth import ChatKey, RuntimeDep
from assistant.api.errors import error_response, status_for
from assistant.api.limits import admit
from assistant.api.schemas import ERROR_RESPONSES
from assistant.api.turns import (
    SSE_HEADERS,
    SSE_PING,
    ClosingStreamingResponse,
    KeepAlive,
    TurnRun,
    admit_turn,
    queued_stream,
    start_turn,
    wait_for_turn,
)
from assistant.errors import InvalidInput, MentorlyError, NotFound
from assistant.events import TextDelta
from assistant.runtime import Runtime
from assistant.tooling import Upload

router = APIRouter(tags=["openai"])
MODEL_ID = "mentorly"
_CREATED = 1_767_225_600  # a fixed "created" for the model listing


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, ...: accepted, not used

    # documented as an enum; any other name is answered 404 as OpenAI does (not 422)
    model: str = Field(description=f"'{MODEL_ID}' (see GET /v1/models)",
                       json_schema_extra={"enum": [MODEL_ID]})
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=200)
    tools: list[dict[str, Any]] | None = None
    conversation_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                        description="extension: continue a stored conversation")


class ModelInfo(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


@router.get("/v1/models", operation_id="list_models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(_principal: ChatKey) -> ModelList:
    return ModelList(data=[ModelInfo(id=MODEL_ID, created=_CREATED, owned_by="mentorly")])


def _decode_image(url: str) -> bytes:
    if not url.startswith("data:"):
        raise InvalidInput("image_url must be a data: URL (the server never fetches URLs)")
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise InvalidInput("image_url data: URLs must be base64-encoded")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("image_url holds invalid base64") from None


def _parse(body: ChatCompletionRequest, runtime: Runtime, tenant: str) -> tuple[str, list[Upload]]:
    """The last user message: its text, and its images saved to the upload store."""
    if body.tools:
        raise InvalidInput("client-side tools are not supported: the assistant runs its own tools "
                           "server-side (see GET /api/tools)")
    last = body.messages[-1]
    if last.role != "user":
        raise InvalidInput("the last message must have role 'user'")
    if last.content is None or isinstance(last.content, str):
        return last.content or "", []
    texts: list[str] = []
    images: list[bytes] = []
    for part in last.content:
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
            if not isinstance(url, str):
                raise InvalidInput("image_url needs a 'url'")
            images.append(_decode_image(url))
        else:
            raise InvalidInput(f"unsupported content part {kind!r} (use 'text' or 'image_url')")
    if len(images) > 8:
        raise InvalidInput("at most 8 images per message")
    files = [runtime.uploads.save(data, f"image-{i + 1}", tenant) for i, data in enumerate(images)]
    return "\n".join(texts), files


def _history(body: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The earlier turns the client sent (text only), or ``None`` to use the stored conversation.

    A client that continues by ``conversation_id`` and sends only its new message gets the
    stored history; one that sends the whole conversation (the OpenAI way) gets exactly that.
    """
    earlier = body.messages[:-1]
    if not earlier and body.conversation_id:
        return None
    turns: list[dict[str, Any]] = []
    for m in earlier:
        if m.role not in ("user", "assistant"):
            continue  # system/developer messages are instructions (``_instructions``)
        text = _text_of(m.content)
        if text:
            turns.append({"role": m.role, "content": text})
    return turns


MAX_INSTRUCTION_CHARS = 4000


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content or () if isinstance(p, dict)
                     and p.get("type") == "text" and isinstance(p.get("text"), str))


def _instructions(body: ChatCompletionRequest) -> str:
    """The client's ``system``/``developer`` messages, joined. They are honoured within the
    assistant's own rules (tone and focus of generated text; quotes, citations and refusals
    stay as they are), never dropped silently, never a replacement for its system prompt."""
    text = "\n".join(t for m in body.messages if m.role in ("system", "developer")
                     if (t := _text_of(m.content).strip()))
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InvalidInput(f"messages: the system/developer messages are {len(text):,} characters "
                           f"together; at most {MAX_INSTRUCTION_CHARS:,} are accepted")
    return text


def _extension(turn: TurnRun) -> dict[str, Any]:
    done = turn.done
    return {"steps": turn.step_list, "sources": done.sources if done else [],
            "conversation_id": done.conversation_id if done else None,
            "route": done.route if done else {}, "backend_model": done.model if done else None,
            "answer_mode": done.answer_mode if done else None,
            "grounding": done.grounding if done else None}


def _usage(turn: TurnRun) -> dict[str, int]:
    usage = turn.done.usage if turn.done else {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk(completion_id: str, created: int, delta: dict[str, Any], finish: str | None = None,
           **extra: Any) -> bytes:
    data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
    return f"data: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


async def _stream(turn: TurnRun, completion_id: str, created: int,
                  include_usage: bool) -> AsyncIterator[bytes]:
    yield _chunk(completion_id, created, {"role": "assistant", "content": ""})
    async with contextlib.aclosing(turn.events()) as events:
        async for event in events:
            if isinstance(event, KeepAlive):
                yield SSE_PING
            elif isinstance(event, TextDelta) and event.text:
                yield _chunk(completion_id, created, {"content": event.text})
    if turn.error is not None or turn.done is None:
        kind = turn.error.error_type if turn.error else "internal_error"
        message = turn.error.message if turn.error else "the turn ended without an answer"
        yield f"data: {json.dumps({'error': {'type': kind, 'message': message}})}\n\n".encode()
    else:
        yield _chunk(completion_id, created, {}, "stop", mentorly=_extension(turn))
        if include_usage:
            usage_chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                           "model": MODEL_ID, "choices": [], "usage": _usage(turn)}
            yield f"data: {json.dumps(usage_chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _place_comment(position: int, retry_after_s: int) -> bytes:
    return f": queued position={position} retry_after_s={retry_after_s}\n\n".encode()


def _stream_error(exc: MentorlyError) -> bytes:
    error = {"type": exc.error_type, "message": exc.message}
    return f"data: {json.dumps({'error': error})}\n\ndata: [DONE]\n\n".encode()


@router.post("/v1/chat/completions", operation_id="create_chat_completion", responses={
    **ERROR_RESPONSES, 200: {"description": "a chat.completion object, or chat.completion.chunk SSE "
                                            "lines ending with 'data: [DONE]' when stream=true",
                             "content": {"text/event-stream": {}}}})
async def create_chat_completion(body: ChatCompletionRequest, request: Request, principal: ChatKey,
                                 runtime: RuntimeDep) -> Any:
    """OpenAI-compatible chat; tools run server-side; steps and sources in ``mentorly``."""
    if body.model != MODEL_ID:
        raise NotFound(f"model {body.model!r} does not exist; available: {MODEL_ID}")
    instructions = _instructions(body)
    message, files = await anyio.to_thread.run_sync(_parse, body, runtime, principal.tenant)
    await admit(request, tenant=principal.tenant, user=body.user, key=principal.key_prefix or "",
                surface="openai")
    ticket = admit_turn(runtime)
    history = _history(body)

    async def start() -> TurnRun:
        return await start_turn(runtime, request.app.state.metrics, "openai", ticket, message=message,
                                files=files, user=body.user, tenant=principal.tenant,
                                conversation_id=body.conversation_id, history=history,
                                instructions=instructions)

    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def body_of(turn: TurnRun) -> AsyncIterator[bytes]:
        return _stream(turn, completion_id, created, include_usage)

    if body.stream and not ticket.running:
        return ClosingStreamingResponse(
            queued_stream(ticket, runtime.settings.server.keepalive_s, start, _place_comment, body_of,
                          _stream_error),
            media_type="text/event-stream", headers=SSE_HEADERS)
    if not ticket.running:
        await wait_for_turn(ticket)
    turn = await start()
    if body.stream:
        return ClosingStreamingResponse(body_of(turn), turn=turn, media_type="text/event-stream",
                                        headers=SSE_HEADERS)
    await turn.collect()
    if turn.done is None:
        kind = turn.error.error_type if turn.error else "internal_error"
        message = turn.error.message if turn.error else "the turn ended without an answer"
        return error_response(kind, message, status_for(kind) if turn.error else 500)
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": turn.done.text},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": _usage(turn), "mentorly": _extension(turn)}
