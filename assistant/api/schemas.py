"""Request and response bodies of the native API (``/api``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ID = r"^[A-Za-z0-9_-]{1,64}$"
_USER = r"^[^\x00-\x1f]{1,200}$"


class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable kind, e.g. 'unauthorized', 'invalid_input'")
    message: str = Field(description="a sentence for a person")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class UploadInfo(BaseModel):
    id: str
    mime: str
    size: int
    width: int | None = None
    height: int | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field("", description="the question (may be empty when an image is attached)")
    uploads: list[str] = Field(default_factory=list, max_length=8,
                               description="ids from POST /api/uploads")
    conversation_id: str | None = Field(None, pattern=_ID, description="continue this conversation")
    user: str | None = Field(None, pattern=_USER,
                             description="the end user's id within the key's tenant (default: anonymous)")
    stream: bool = Field(True, description="true: server-sent events; false: one JSON result")
    collection: str | None = Field(None, max_length=100, pattern=r"^[\w.-]+$",
                                   description="the document collection to search by default")


class Step(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("", description="why this tool was chosen, in English")
    reasons: list[dict[str, Any]] = Field(
        default_factory=list, description="the same as codes with parameters, e.g. "
        "{'code': 'fallback', 'tool': 'knowledge_search'}, to render in the learner's language")
    ok: bool | None = None
    summary: str | None = None
    result: Any = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float | None = None
    error: str | None = None


class ChatResult(BaseModel):
    text: str
    conversation_id: str
    tools: list[str]
    steps: list[Step]
    sources: list[dict[str, Any]]
    route: dict[str, Any]
    usage: dict[str, int]
    model: str


class MessageOut(BaseModel):
    role: str
    content: str
    meta: dict[str, Any]
    created_at: datetime


class ConversationOut(BaseModel):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[MessageOut]


class ToolInfo(BaseModel):
    name: str
    description: str
    version: str
    plugin: str | None
    capability: str | None
    parameters: dict[str, Any] = Field(description="JSON schema of the arguments")
    examples: list[str]


class ToolCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] = Field(default_factory=dict, description="checked against the tool's schema")
    uploads: list[str] = Field(default_factory=list, max_length=8,
                               description="ids from POST /api/uploads, given to the tool as files")


class ToolCallResult(BaseModel):
    tool: str
    data: Any
    summary: str | None
    provenance: dict[str, Any]
    sources: list[dict[str, Any]]
    duration_ms: float


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in {
        401: "missing, malformed or revoked API key",
        403: "the key lacks the scope",
        404: "unknown id or name (another tenant's ids read as unknown)",
        422: "invalid input",
        429: "rate limit reached (see Retry-After)",
    }.items()
}
