"""``POST /api/chat``: one turn, streamed as server-sent events of the CLI's ``--json`` events
(``step_started``, ``step_finished``, ``text_delta``, ``sources``, ``done``, ``error``), or one
JSON result with ``stream=false``.

When every place to run is taken, a streamed turn first gets ``queued`` events (its place in
line, a guess in seconds, a message in the learner's language) and ``: ping`` comments; a
non-streamed one waits; when the line is full too, the answer is 429 with ``Retry-After``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from assistant.admission import place_message
from assistant.api.auth import ChatKey, RuntimeDep
from assistant.api.errors import error_response, status_for
from assistant.api.limits import admit
from assistant.api.schemas import ERROR_RESPONSES, ChatRequest, ChatResult
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
from assistant.errors import MentorlyError
from assistant.events import to_dict
from assistant.language import detect_language

router = APIRouter(tags=["chat"])


def sse_line(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


async def sse_events(turn: TurnRun) -> AsyncIterator[bytes]:
    """The turn's events as SSE lines (``event: <type>``), ``: ping`` for keep-alives."""
    async with contextlib.aclosing(turn.events()) as events:
        async for event in events:
            if isinstance(event, KeepAlive):
                yield SSE_PING
                continue
            data = to_dict(event)
            yield sse_line(data, data["type"])


def place_event(position: int, retry_after_s: int, language: str) -> bytes:
    """The ``queued`` event: the turn's place in line while every model slot is busy."""
    return sse_line({"type": "queued", "position": position, "retry_after_s": retry_after_s,
                     "message": place_message(position, retry_after_s, language)}, "queued")


def error_event(exc: MentorlyError, language: str) -> bytes:
    data: dict[str, Any] = {"type": "error", "message": exc.localized(language),
                            "error_type": exc.error_type}
    retry = getattr(exc, "retry_after_s", None)
    if retry is not None:
        data["retry_after_s"] = retry
    return sse_line(data, "error")


def result_of(turn: TurnRun) -> ChatResult:
    done = turn.done
    assert done is not None
    return ChatResult(text=done.text, conversation_id=done.conversation_id, tools=done.tools,
                      steps=turn.step_list, sources=done.sources, route=done.route, usage=done.usage,
                      model=done.model)


@router.post("/api/chat", operation_id="chat", response_model=ChatResult,
             responses={**ERROR_RESPONSES, 200: {
                 "description": "a ChatResult (stream=false) or a text/event-stream of events",
                 "content": {"text/event-stream": {}}}})
async def chat(body: ChatRequest, request: Request, principal: ChatKey, runtime: RuntimeDep) -> Any:
    """Ask the assistant. Upload ids and conversation ids of other tenants read as unknown (404)."""
    files = [runtime.uploads.get(principal.tenant, upload_id) for upload_id in body.uploads]
    await admit(request, tenant=principal.tenant, user=body.user, key=principal.key_prefix or "",
                surface="api")
    ticket = admit_turn(runtime)

    async def start() -> TurnRun:
        return await start_turn(runtime, request.app.state.metrics, "api", ticket, message=body.message,
                                files=files, user=body.user, tenant=principal.tenant,
                                conversation_id=body.conversation_id, collection=body.collection)

    if body.stream and not ticket.running:
        language = detect_language(body.message)
        return ClosingStreamingResponse(
            queued_stream(ticket, runtime.settings.server.keepalive_s, start,
                          lambda position, retry: place_event(position, retry, language), sse_events,
                          lambda exc: error_event(exc, language)),
            media_type="text/event-stream", headers=SSE_HEADERS)
    if not ticket.running:
        await wait_for_turn(ticket)
    turn = await start()
    if body.stream:
        return ClosingStreamingResponse(sse_events(turn), turn=turn, media_type="text/event-stream",
                                        headers=SSE_HEADERS)
    await turn.collect()
    if turn.done is None:
        error = turn.error
        message = error.message if error else "the turn ended without an answer"
        kind = error.error_type if error else "internal_error"
        return error_response(kind, message, status_for(kind) if error else 500)
    return result_of(turn)
