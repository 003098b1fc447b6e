"""HTTP operations for recommendations, added by the ``register_routes`` hook: catalog import and
listing (``/api/catalog``), learners' events (``/api/events``), training and recommendations
(``/api/recommendations``).

Scopes: importing a catalog and training change or rebuild the whole tenant's data and cost CPU,
so they need ``admin``. Recording events and asking for recommendations are what a learning
site's backend (or the chat widget's host) does for its learners, so either ``tools`` or
``chat`` is enough; listing the catalog needs the same. Every operation acts on the calling
key's tenant only; nothing in a request chooses the tenant.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator
from pydantic_core import PydanticCustomError
from starlette.datastructures import UploadFile

from assistant.api import require
from assistant.api.auth import Credentials, authenticate_request
from assistant.api.bodies import check_json
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse
from assistant.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from assistant.security import ADMIN, CHAT, TOOLS, Principal

from .catalog import MAX_FILE_BYTES, import_file, load_catalog
from .events import record_events
from .recommender import MAX_K, recommend
from .store import LEVELS

MAX_EVENTS_PER_REQUEST = 10_000
_TEXT = r"^[^\x00-\x1f]+$"  # no control characters (PostgreSQL refuses NUL in text)
_CATALOG_SUFFIXES = (".csv", ".json", ".jsonl")
_MEDIA_SUFFIX = {"application/json": ".json", "text/csv": ".csv", "application/x-ndjson": ".jsonl",
                 "application/jsonl": ".jsonl"}
_train_lock = threading.Lock()  # one training at a time per process: it is CPU-bound


def require_any(*scopes: str) -> Callable[..., Any]:
    """A dependency like ``require(scope)``, satisfied by any one of ``scopes`` (or ``admin``)."""

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        principal = await authenticate_request(request.headers.get("authorization"),
                                               request.app.state.keys, request.app.state.limiter)
        if not any(principal.allows(s) for s in scopes):
            raise Forbidden(f"this API key needs one of the scopes {', '.join(map(repr, scopes))} "
                            f"(it has: {', '.join(principal.scopes)})")
        request.state.principal = principal
        return principal

    dependency.__name__ = "require_" + "_or_".join(scopes)
    return dependency


AdminKey = Annotated[Principal, Depends(require(ADMIN))]
LearnerKey = Annotated[Principal, Depends(require_any(TOOLS, CHAT))]


class RejectedRow(BaseModel):
    row: int = Field(description="1-based row (CSV: line, the header is row 1; JSON: item)")
    reason: str


class ImportReportOut(BaseModel):
    imported: int = Field(description="new resources")
    updated: int = Field(description="resources that already existed and were replaced")
    rejected: list[RejectedRow]
    cycles: list[list[str]] = Field(description="cyclic prerequisites (those links are dropped)")
    warnings: list[str]


class CatalogPage(BaseModel):
    total: int
    items: list[dict[str, Any]] = Field(description="resources: id, title, title_zh, description, "
                                                    "subject, level, language, tags, prerequisites, "
                                                    "duration_min")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(max_length=200, pattern=_TEXT, description="the learner's id within the tenant")
    resource: str = Field(max_length=128, pattern=_TEXT, description="a catalog resource id")
    kind: str = Field(max_length=16, description="view | complete | like | rating | quiz")
    value: float | None = Field(None, description="rating 1–5, or quiz score 0–100")
    timestamp: float | str | None = Field(
        None, description="epoch seconds or milliseconds, or ISO-8601; default: now")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(max_length=MAX_EVENTS_PER_REQUEST)

    @field_validator("events", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return _at_most_events(value)


def _at_most_events(value: Any) -> Any:
    """Count before validating: 10,001 events are refused without checking each one."""
    if isinstance(value, list) and len(value) > MAX_EVENTS_PER_REQUEST:
        raise PydanticCustomError("too_many_events", "at most {limit} events per request, got {count}",
                                  {"limit": MAX_EVENTS_PER_REQUEST, "count": len(value)})
    return value


EventList = Annotated[list[EventIn], BeforeValidator(_at_most_events),
                      Field(max_length=MAX_EVENTS_PER_REQUEST)]


def _event_shape(value: Any) -> str | None:
    """Which of the three accepted bodies this is, so that an error is reported against that
    one only (not as three failed alternatives). The tags are the error locations' first part:
    "" for ``{"events": [...]}`` (its own field names the place)."""
    if isinstance(value, list):
        return "events"
    if isinstance(value, dict):
        return "" if "events" in value else "event"
    return None


EventsBody = Annotated[
    Annotated[EventIn, Tag("event")] | Annotated[EventBatch, Tag("")] | Annotated[EventList, Tag("events")],
    Discriminator(_event_shape, custom_error_type="invalid_events",
                  custom_error_message="send one event object, a list of events, or {\"events\": [...]}"),
]


class RejectedEvent(BaseModel):
    index: int = Field(description="0-based position in the batch")
    reason: str


class EventReportOut(BaseModel):
    accepted: int
    duplicates: list[int] = Field(description="positions of events already recorded (skipped)")
    rejected: list[RejectedEvent]


class TrainResult(BaseModel):
    version: int
    cf: str = Field(description="the collaborative-filtering model chosen by validation")
    n_items: int
    n_learners: int
    n_events: int
    trained_at: str
    fit_s: float


class RecommendationOut(BaseModel):
    id: str
    title: str
    subject: str
    level: str
    score: float
    explanation: str
    duration_min: int | None = None
    language: str


class Recommendations(BaseModel):
    user: str
    items: list[RecommendationOut]
    confidence: float = Field(description="how much the list rests on the learner's own history")
    cold: bool = Field(description="true when the learner has no history yet")
    language: str
    model_version: str


def _utf8(data: bytes, what: str) -> None:
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedMedia(f"{what} is not UTF-8 text") from None


async def _read_limited(stream: Any, limit: int) -> bytes:
    data = bytearray()
    async for piece in stream:
        data += piece
        if len(data) > limit:
            raise PayloadTooLarge(f"the catalog is over the limit of {limit:,} bytes")
    return bytes(data)


async def catalog_bytes(request: Request) -> tuple[bytes, str]:
    """The catalog's bytes and its format suffix, from a multipart upload or a raw body."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FILE_BYTES + 64 * 1024:
        raise PayloadTooLarge(f"the catalog is {int(length):,} bytes, over the limit of "
                              f"{MAX_FILE_BYTES:,}")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("send the catalog as the multipart field 'file'")
        name = (upload.filename or "").rsplit("/", 1)[-1]
        suffix = Path(name).suffix.lower()
        if suffix not in _CATALOG_SUFFIXES:
            raise UnsupportedMedia(f"unsupported catalog file {name or '(no name)'!r}: use "
                                   f"{', '.join(_CATALOG_SUFFIXES)}")
        data = await upload.read(MAX_FILE_BYTES + 1)
        await upload.close()
        if len(data) > MAX_FILE_BYTES:
            raise PayloadTooLarge(f"the catalog is over the limit of {MAX_FILE_BYTES:,} bytes")
    elif media in _MEDIA_SUFFIX:
        suffix = _MEDIA_SUFFIX[media]
        data = await _read_limited(request.stream(), MAX_FILE_BYTES)
    else:
        raise UnsupportedMedia(f"unsupported Content-Type {media or '(none)'!r}: send JSON, CSV "
                               f"(text/csv), JSON lines (application/x-ndjson) or a multipart "
                               f"upload named 'file'")
    if not data.strip():
        raise InvalidInput("the catalog is empty")
    _utf8(data, "the catalog")
    if suffix in (".json", ".jsonl"):  # a raw JSON body was checked by the body guard; a file was not
        check_json(data, lines=suffix == ".jsonl", what="the catalog")
    return data, suffix


def _import(runtime: Any, tenant: str, data: bytes, suffix: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mentorly-catalog-") as folder:
        path = Path(folder) / f"catalog{suffix}"
        path.write_bytes(data)
        return import_file(path, tenant=tenant, settings=runtime.settings).as_dict()


def _catalog(runtime: Any, tenant: str, subject: str | None, level: str | None, limit: int,
             offset: int) -> CatalogPage:
    items = [i for i in load_catalog(tenant, runtime.settings)
             if (subject is None or i.subject == subject.strip().lower())
             and (level is None or i.level == level)]
    return CatalogPage(total=len(items), items=[i.as_dict() for i in items[offset:offset + limit]])


def _record(runtime: Any, tenant: str, events: list[EventIn]) -> dict[str, Any]:
    batch: list[Any] = [e.model_dump() for e in events]
    try:
        report = record_events(batch, tenant=tenant, settings=runtime.settings)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return report.as_dict()


def _train(runtime: Any, tenant: str) -> TrainResult:
    from .model import train_model

    if not load_catalog(tenant, runtime.settings):
        raise NotFound("there is no learning-resource catalog yet: POST /api/catalog first")
    with _train_lock:
        try:
            model = train_model(tenant, runtime.settings)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    meta = model.meta
    return TrainResult(version=int(meta["version"]), cf=str(meta.get("cf", "none")),
                       n_items=meta["n_items"], n_learners=meta["n_learners"],
                       n_events=meta["n_events"], trained_at=meta["trained_at"],
                       fit_s=meta["fit_s"])


def _recommend(runtime: Any, tenant: str, user: str, k: int, subject: str | None,
               level: str | None, lang: str) -> Recommendations:
    result = recommend(tenant, user, k=k, subject=subject, level=level, language=lang,
                       settings=runtime.settings)
    return Recommendations(user=user, items=[RecommendationOut(**r.as_dict()) for r in result.items],
                           confidence=result.confidence, cold=result.cold, language=result.language,
                           model_version=result.model.version)


_CATALOG_BODY = {
    "required": True,
    "description": "the catalog: a JSON list of resources (or {\"resources\": [...]}), CSV with a "
                   "header row (id, title, title_zh, description, description_zh, subject, level, "
                   "language, tags, prerequisites, duration_min; lists separated by ';'), JSON "
                   "lines, or a multipart upload of a .csv/.json/.jsonl file in the field 'file'",
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}}}},
    },
}


def make_router(runtime: Any) -> APIRouter:
    router = APIRouter(responses=ERROR_RESPONSES)

    @router.post("/api/catalog", operation_id="import_catalog", response_model=ImportReportOut,
                 tags=["recommendations"], openapi_extra={"requestBody": _CATALOG_BODY},
                 responses={413: {"model": ErrorResponse, "description": "over 20 MiB"},
                            415: {"model": ErrorResponse,
                                  "description": "not CSV, JSON or JSON lines, or not UTF-8"}})
    async def import_catalog(request: Request, principal: AdminKey) -> dict[str, Any]:
        """Add or replace learning resources of this key's tenant (``admin`` scope). Each row is
        validated on its own: the report lists the rows rejected and why, prerequisite cycles
        (those links are dropped) and unknown prerequisites; valid rows are stored even when
        others are rejected."""
        data, suffix = await catalog_bytes(request)
        return await anyio.to_thread.run_sync(_import, runtime, principal.tenant, data, suffix)

    @router.get("/api/catalog", operation_id="list_catalog", response_model=CatalogPage,
                tags=["recommendations"])
    async def list_catalog(
        principal: LearnerKey,
        subject: Annotated[str | None, Query(max_length=100)] = None,
        level: Annotated[str | None, Query(pattern=f"^({'|'.join(LEVELS)})$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> CatalogPage:
        """This tenant's resources, ordered by id (``tools`` or ``chat`` scope)."""
        return await anyio.to_thread.run_sync(_catalog, runtime, principal.tenant, subject, level,
                                              limit, offset)

    @router.post("/api/events", operation_id="record_events", response_model=EventReportOut,
                 tags=["recommendations"])
    async def post_events(body: EventsBody, principal: LearnerKey) -> dict[str, Any]:
        """Record one learner event, a list of them, or ``{"events": [...]}`` (``tools`` or
        ``chat`` scope).
        Each event is checked on its own: duplicates (same user, resource, kind, timestamp)
        are skipped and reported, invalid events and unknown resources are rejected with the
        reason; the valid ones are stored together. They count at once: the next
        recommendation for that learner uses them, without retraining."""
        events = body.events if isinstance(body, EventBatch) else \
            body if isinstance(body, list) else [body]
        return await anyio.to_thread.run_sync(_record, runtime, principal.tenant, events)

    @router.post("/api/recommendations/train", operation_id="train_recommender",
                 response_model=TrainResult, tags=["recommendations"])
    async def train(principal: AdminKey) -> TrainResult:
        """Retrain this tenant's model from all its events and its catalog (``admin`` scope).
        Seconds for small catalogs; the model also retrains itself when the catalog gained
        resources it does not know."""
        return await anyio.to_thread.run_sync(_train, runtime, principal.tenant)

    @router.get("/api/recommendations", operation_id="get_recommendations",
                response_model=Recommendations, tags=["recommendations"])
    async def recommendations(
        principal: LearnerKey,
        user: Annotated[str | None, Query(min_length=1, max_length=200, pattern=_TEXT, description=(
            "the learner; default: the key's own user identity when it has one (keys are "
            "per tenant today, so give it)"))] = None,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 5,
        subject: Annotated[str | None, Query(max_length=200, description=(
            "a catalog subject, or a free topic matched by content"))] = None,
        level: Annotated[str | None, Query(max_length=40, description=(
            "beginner, intermediate or advanced"))] = None,
        lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en",
    ) -> Recommendations:
        """What this learner should study next, with a one-line reason each (``tools`` or
        ``chat`` scope). Completed resources and those whose prerequisites are not met are
        left out."""
        who = user if user is not None else getattr(principal, "user", None)
        if not who or not who.strip():
            raise InvalidInput("give the learner as ?user=ID (this key has no user of its own)")
        return await anyio.to_thread.run_sync(_recommend, runtime, principal.tenant, who.strip(),
                                              k, subject, level, lang)

    return router


def install(app: FastAPI, runtime: Any) -> None:
    app.include_router(make_router(runtime))
