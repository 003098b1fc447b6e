"""The embeddable widget: the endpoints it calls (``/widget/api/session``, ``/widget/api/chat``,
``/widget/api/uploads``); its static files are served by ``assistant.api.widget_static``.

The widget runs on another site's pages, so every call is cross-origin. It sends only "simple"
requests (``text/plain`` JSON bodies, multipart uploads, no custom headers) so that browsers send
no CORS preflight; each response names the calling origin in ``Access-Control-Allow-Origin``.
Work happens only for an origin on the widget key's allowlist; a refusal still carries the
header so the widget can show why. The publishable key and the learner token travel in the body.

A page launched from a learning platform (LTI, ``ui/lti/page.html``) sends ``session`` (the
launch's ``lti_…`` token) instead of the key: no origin allowlist applies (the page is on our
own origin and the token is the credential); who the learner is, their course and what they may
do come from the signed launch only. Their questions search the course's collection first, then
the platform's shared collections; their usage is metered with surface ``lti`` and the course.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from assistant.api.lti_course import shared_collections
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
from assistant.errors import Forbidden, InvalidInput, MentorlyError, PayloadTooLarge
from assistant.language import detect_language
from assistant.lti.sessions import LtiSessions, SessionInfo
from assistant.quotas import QuotaExceeded
from assistant.runtime import Runtime
from assistant.security.widget_tokens import Learner, WidgetKeys
from assistant.storage import Conversation, Message, User

router = APIRouter(tags=["widget"])
MAX_BODY = 256 * 1024  # JSON bodies (the body guard applies it before they are read here)
RESOURCE_LINK = "LtiResourceLinkRequest"  # the launch that opens the chat (not deep linking)


class WidgetAuth(BaseModel):
    """A widget key (with the host's learner token, or an anonymous visitor's id), or a
    launched LTI page's ``session``."""

    key: str | None = Field(None, max_length=64)
    session: str | None = Field(None, max_length=64)
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


@dataclass(frozen=True)
class Asker:
    """Who calls: the learner, and for a launched LTI page the launch's session."""

    learner: Learner
    lti: SessionInfo | None = None

    @property
    def surface(self) -> str:
        return "lti" if self.lti is not None else "widget"

    @property
    def course(self) -> str:
        """The usage row's ``course``: an LTI course's collection, else ``""``."""
        return (self.lti.collection or "") if self.lti is not None else ""


async def _asker(request: Request, auth: WidgetAuth) -> Asker:
    """Check the widget key, origin and token, or the LTI session; a session may chat only
    when it came from a resource-link launch (a deep-linking launch places the tool)."""
    runtime: Runtime = request.app.state.runtime
    info: SessionInfo | None = None
    if auth.session is not None:
        if auth.key is not None:
            raise InvalidInput("invalid widget request: give the widget key or the LTI session, not both")
        sessions: LtiSessions = request.app.state.lti_sessions
        info = await anyio.to_thread.run_sync(sessions.verify, auth.session)
        if info.message_type != RESOURCE_LINK:
            raise Forbidden("this launch places the assistant in a course; open it from the course "
                            "to chat")
        learner = Learner(tenant=info.tenant, external_id=info.user, key=info.meter_key,
                          display_name=info.display_name or None, course=info.collection)
    elif auth.key is not None:
        keys: WidgetKeys = request.app.state.widget_keys
        learner = await anyio.to_thread.run_sync(keys.verify, auth.key, request.headers.get("origin"),
                                                 auth.token, auth.anon)
    else:
        raise InvalidInput("invalid widget request: the widget key (key) is missing")
    if not learner.anonymous:  # history and recommendations follow the learner
        await anyio.to_thread.run_sync(runtime.db.ensure_user, learner.tenant, learner.external_id,
                                       learner.display_name)
    return Asker(learner, info)


async def _learner(request: Request, auth: WidgetAuth) -> Learner:
    return (await _asker(request, auth)).learner


@router.post("/widget/api/session", include_in_schema=False)
async def widget_session(request: Request) -> Response:
    """Checks the key, origin and token when the panel opens; says who the learner is."""
    try:
        asker = await _asker(request, await _json_body(request, WidgetAuth))
    except MentorlyError as exc:
        return _error(request, exc)
    runtime: Runtime = request.app.state.runtime
    learner = asker.learner
    conversation_id, messages = (None, []) if learner.anonymous else \
        await anyio.to_thread.run_sync(_latest_conversation, runtime, learner, asker.course)
    return JSONResponse({"tenant": learner.tenant, "anonymous": learner.anonymous,
                         "name": learner.display_name, "course": learner.course,
                         "conversation_id": conversation_id, "messages": messages}, headers=_cors(request))


def _latest_conversation(runtime: Runtime, learner: Learner, course: str = "",
                         limit: int = 20) -> tuple[str | None, list[Any]]:
    """The signed-in learner's most recent conversation (its last ``limit`` messages), so the
    history follows the learner from page to page; in an LTI course, that course's."""
    with runtime.db.session() as s:
        user = s.scalar(select(User).where(User.tenant_id == learner.tenant,
                                           User.external_id == learner.external_id))
        if user is None:
            return None, []
        conv = s.scalar(select(Conversation).where(Conversation.tenant_id == learner.tenant,
                                                   Conversation.user_id == user.id,
                                                   Conversation.course == course)
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
        asker = await _asker(request, body)
        learner = asker.learner
        # a launched page searches its course, then the platform's shared collections: never
        # what the page's body names
        collection = learner.course if asker.lti is not None else body.collection
        fallbacks = (await anyio.to_thread.run_sync(shared_collections, runtime.db, asker.lti.platform_id)
                     if asker.lti is not None else None)
        await admit(request, tenant=learner.tenant, user=learner.external_id, key=learner.key,
                    surface=asker.surface, course=asker.course)
        files = [runtime.uploads.get(learner.tenant, upload_id) for upload_id in body.uploads]
        ticket = admit_turn(runtime)
    except MentorlyError as exc:
        return _error(request, exc)

    async def start() -> TurnRun:
        gen = attributed(runtime.agent.run(body.message, files=files, user=learner.external_id,
                                           tenant=learner.tenant, conversation_id=body.conversation_id,
                                           collection=collection, fallback_collections=fallbacks,
                                           course=asker.course),
                         learner.key, asker.surface, course=asker.course)
        turn = await begin_turn(runtime, request.app.state.metrics, asker.surface, ticket, gen)
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


def _form_auth(**fields: str | None) -> WidgetAuth:
    """The upload form's fields as ``WidgetAuth``; an overlong one is a 422, not a 500."""
    try:
        return WidgetAuth.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(f"invalid widget request: {describe_errors(exc.errors())}") from None


@router.post("/widget/api/uploads", include_in_schema=False, dependencies=[Depends(_refuse_oversized_body)])
async def widget_upload(request: Request, file: Annotated[UploadFile, File()],
                        key: Annotated[str | None, Form()] = None,
                        session: Annotated[str | None, Form()] = None,
                        token: Annotated[str | None, Form()] = None,
                        anon: Annotated[str | None, Form()] = None) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        # an overlong key or session is cut to 64 characters (then refused as malformed: 401)
        auth = _form_auth(key=None if key is None else key[:64],
                          session=None if session is None else session[:64], token=token, anon=anon)
        learner = await _learner(request, auth)
        data = await read_upload(file, runtime.settings.uploads.max_bytes)
        upload = await anyio.to_thread.run_sync(runtime.uploads.save, data, file.filename or "upload",
                                                learner.tenant)
    except MentorlyError as exc:
        return _error(request, exc)
    return JSONResponse({"id": upload.id, "mime": upload.mime, "width": upload.width,
                         "height": upload.height}, status_code=201, headers=_cors(request))
