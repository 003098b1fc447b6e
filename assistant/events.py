"""Typed events of one turn, consumed by the CLI (``--json``), the UI and the HTTP API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class StepStarted:
    step_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str = ""
    """Why this tool was chosen, in English (``route["reason"]``)."""
    reasons: list[dict[str, Any]] = field(default_factory=list)
    """The same as codes with parameters (``assistant.reasons``), to render in any language."""
    type: Literal["step_started"] = "step_started"


@dataclass
class StepFinished:
    step_id: str
    tool: str
    ok: bool
    summary: str
    result: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    error: str | None = None
    type: Literal["step_finished"] = "step_finished"


@dataclass
class TextDelta:
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass
class SourcesEvent:
    sources: list[dict[str, Any]]
    type: Literal["sources"] = "sources"


@dataclass
class Done:
    text: str
    tools: list[str]
    sources: list[dict[str, Any]]
    conversation_id: str
    route: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    answer_mode: str = "chat"
    """``generated`` (quoted evidence + a summary that passed the check), ``quoted`` (evidence
    only), ``abstained`` (the documents do not answer), ``tool`` (a tool's result), ``chat``."""
    grounding: dict[str, Any] | None = None
    """For knowledge answers: the answerability verdict, the evidence quoted, check problems."""
    type: Literal["done"] = "done"


@dataclass
class ErrorEvent:
    message: str
    error_type: str = "error"
    type: Literal["error"] = "error"


Event = StepStarted | StepFinished | TextDelta | SourcesEvent | Done | ErrorEvent


def to_dict(event: Event) -> dict[str, Any]:
    data = asdict(event)
    return {"type": data.pop("type"), **data}
