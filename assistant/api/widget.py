"""The embeddable widget: the endpoints it calls (``/widget/api/session``, ``/widget/api/chat``,
``/widget/api/uploads``); its static files are served by ``assistant.api.widget_static``.

The widget runs on another site's pages, so every call is cross-origin. It sends only "simple"
requests (``text/plain`` JSON bodies, multipart uploads, no custom headers) so that browsers send
no CORS preflight; each response names the calling origin in ``Access-Control-Allow-Origin``.
Work happens only for an origin on the widget key's allowlist; a refusal still carries the
header so the widget can show why. The publishable key and the learner token travel in the body.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from assistant.api.chat import error_event, place_event, sse_events
from assistant.api.cors import widget_cors
from assistant.api.errors import describe_errors, mentorly_error_response
from assistant.api.limits import admit, attributed, quota_response
from assistant.api.turns import (
    _END,
    SSE_HEADERS,
    ClosingStreamingResponse,
    TurnRun,
    admit_turn,
    begin_turn,
    queued_stream,
)
from assistant.api.uploads import _refuse_oversized_body, read_upload
from assistant.errors import InvalidInput, MentorlyError, PayloadTooLarge
from assistant.language import detect_language
from assistant.quotas import QuotaExceeded
from assistant.runtime import Runtime
from assistant.security.widget_tokens import Learner, WidgetKeys
from assistant.storage import Conversation, Message, User

router = APIRouter(tags=["widget"])
MAX_BODY = 256 * 1024  # JSON bodies (the body guard applies it before they are read here)


class WidgetAuth(BaseModel):
    key: str = Field(max_length=64)
    token: str | None = Field(None, max_length=8192)
    anon: str | None = Field(None, max_length=64)


class WidgetChat(WidgetAuth):
    message: str = Field("", max_length=100_000)
    conversation_id: str | None = Field(None, max_length=64)
    uploads: list[str] = Field(default_factory=list, max_length=4)
    collection: str | None = Field(None, max_length=100, pattern=r"^[\w.-]+$")


def _cors(request: Request) -> dict[str, str]:
    return widget_cors(request.url.path, request.headers.get("origin"))


def _error(request: Request, exc: MentorlyError) -> Response:
    response = quota_response(exc) if isinstance(exc, QuotaExceeded) else mentorly_error_response(exc)
    response.headers.update(_cors(request))
    return response


async def _json_body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the request body exceeded the limit of {MAX_BODY:,} bytes")
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise InvalidInput(f"invalid widget request: the body is not JSON ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid widget request: {describe_errors(exc.errors())}") from None


async def _learner(request: Request, auth: WidgetAuth) -> Learner:
    keys: WidgetKeys = request.app.state.widget_keys
    runtime: Runtime = request.app.state.runtime
    learner = await anyio.to_thread.run_sync(keys.verify, auth.key, request.headers.get("origin"),
                                             auth.token, auth.anon)
    if not learner.anonymous:  # history and recommendations follow the learner
        await anyio.to_thread.run_sync(runtime.db.ensure_user, learner.tenant, learner.external_id,
                                       learner.display_name)
    return learner


@router.post("/widget/api/session", include_in_schema=False)
async def widget_session(request: Request) -> Response:
    """Checks the key, origin and token when the panel opens; says who the learner is."""
    try:
        learner = await _learner(request, await _json_body(request, WidgetAuth))
    except MentorlyError as exc:
        return _error(request, exc)
    runtime: Runtime = request.app.state.runtime
    conversation_id, messages = (None, []) if learner.anonymous else \
        await anyio.to_thread.run_sync(_latest_conversation, runtime, learner)
    return JSONResponse({"tenant": learner.tenant, "anonymous": learner.anonymous,
                         "name": learner.display_name, "course": learner.course,
                         "conversation_id": conversation_id, "messages": messages}, headers=_cors(request))


def _latest_conversation(runtime: Runtime, learner: Learner, limit: int = 20) -> tuple[str | None, list[Any]]:
    """The signed-in learner's most recent conversation (its last ``limit`` messages), so the
    history follows the learner from page to page."""
    with runtime.db.session() as s:
        user = s.scalar(select(User).where(User.tenant_id == learner.tenant,
                                           User.external_id == learner.external_id))
        if user is None:
            return None, []
        conv = s.scalar(select(Conversation).where(Conversation.tenant_id == learner.tenant,
                                                   Conversation.user_id == user.id)
                        .order_by(Conversation.updated_at.desc()).limit(1))
        if conv is None:
            return None, []
        rows = s.scalars(select(Message).where(Message.conversation_id == conv.id,
                                               Message.role.in_(("user", "assistant")))
                         .order_by(Message.seq.desc()).limit(limit)).all()
        return conv.id, [{"role": m.role, "content": m.content} for m in reversed(rows)]


@router.post("/widget/api/chat", include_in_schema=False)
async def widget_chat(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    headers = {**SSE_HEADERS, **_cors(request)}
    try:
        body: WidgetChat = await _json_body(request, WidgetChat)
        learner = await _learner(request, body)
        await admit(request, tenant=learner.tenant, user=learner.external_id, key=learner.key,
                    surface="widget")
        files = [runtime.uploads.get(learner.tenant, upload_id) for upload_id in body.uploads]
        ticket = admit_turn(runtime)
    except MentorlyError as exc:
        return _error(request, exc)

    async def start() -> TurnRun:
        gen = attributed(runtime.agent.run(body.message, files=files, user=learner.external_id,
                                           tenant=learner.tenant, conversation_id=body.conversation_id,
                                           collection=body.collection),
                         learner.key, "widget")
        turn = await begin_turn(runtime, request.app.state.metrics, "widget", ticket, gen)
        if turn.first is _END:
            turn.abandon()
            raise InvalidInput("the turn produced no events")
        return turn

    if not ticket.running:
        language = detect_language(body.message)
        return ClosingStreamingResponse(
            queued_stream(ticket, runtime.settings.server.keepalive_s, start,
                          lambda position, retry: place_event(position, retry, language), sse_events,
                          lambda exc: error_event(exc, language)),
            media_type="text/event-stream", headers=headers)
    try:
        turn = await start()
    except MentorlyError as exc:
        return _error(request, exc)
    return ClosingStreamingResponse(sse_events(turn), turn=turn, media_type="text/event-stream",
                                    headers=headers)


@router.post("/widget/api/uploads", include_in_schema=False, dependencies=[Depends(_refuse_oversized_body)])
async def widget_upload(request: Request, file: Annotated[UploadFile, File()], key: Annotated[str, Form()],
                        token: Annotated[str | None, Form()] = None,
                        anon: Annotated[str | None, Form()] = None) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        learner = await _learner(request, WidgetAuth(key=key[:64], token=token, anon=anon))
        data = await read_upload(file, runtime.settings.uploads.max_bytes)
        upload = await anyio.to_thread.run_sync(runtime.uploads.save, data, file.filename or "upload",
                                                learner.tenant)
    except MentorlyError as exc:
        return _error(request, exc)
    return JSONResponse({"id": upload.id, "mime": upload.mime, "width": upload.width,
                         "height": upload.height}, status_code=201, headers=_cors(request))
