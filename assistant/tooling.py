"""The tool contract: ``@tool`` turns a typed function into a ``Tool`` with a JSON schema.

A parameter annotated ``ToolContext`` is injected at call time and hidden from the schema.
A tool returns a ``ToolResult`` (with provenance) or any JSON-serialisable value.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from assistant.config import Settings, get_settings
from assistant.errors import InvalidInput


@dataclass(frozen=True)
class Upload:
    """A validated file in the upload store; tools get these, never a model-written path."""

    id: str
    path: Path
    mime: str
    size: int
    width: int | None = None
    height: int | None = None


def _process_settings() -> Settings:
    """The one fallback for a context built without settings (a tool's unit test, a script):
    the process's settings. Every surface passes its own (``assistant.tool_calls``), so tools
    read ``context.settings`` and never ``get_settings()`` themselves."""
    return get_settings()


@dataclass
class ToolContext:
    tenant: str
    user: str
    files: list[Upload] = field(default_factory=list)
    settings: Settings = field(default_factory=_process_settings)
    message: str = ""
    language: str = "en"
    collection: str | None = None
    """The document collection the embedding page names (widget ``data-collection``): the
    default for knowledge search. Set by the caller, never by the model."""
    fallback_collections: tuple[str, ...] | None = None
    """Course-first search (an LTI course): ``None`` searches ``collection`` alone (one that does
    not exist is an error: the page named a wrong one). A tuple searches ``collection`` first (a
    course without documents yet reads as empty) and these collections only when it has no
    relevant passage; without ``collection``, these alone (never the tenant's other
    collections). Set by the caller, never by the model."""
    previous_answer: str = ""
    """On a follow-up ("something easier than those?"): the assistant's previous answer, so a
    tool can leave out what it already showed. Set by the agent, never by the model."""

    @property
    def image(self) -> Upload | None:
        return next((f for f in self.files if f.mime.startswith("image/")), None)


@dataclass
class Source:
    """Something an answer can cite as ``[n]``."""

    title: str
    text: str = ""
    uri: str | None = None
    score: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "text": self.text, "uri": self.uri, "score": self.score,
                "metadata": self.metadata}


@dataclass
class ToolResult:
    """A tool's answer plus where it came from."""

    data: Any
    summary: str | None = None
    model: str | None = None
    model_version: str | None = None
    confidence: float | None = None
    sources: list[Source] = field(default_factory=list)
    display: str | None = None
    """Text shown to the user as is, after the LLM's short lead-in (e.g. a list of items):
    small models garble long lists, so they only introduce it."""

    def provenance(self) -> dict[str, Any]:
        return {"model": self.model, "model_version": self.model_version,
                "confidence": self.confidence}


@dataclass
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    context_param: str | None
    examples: list[str] = field(default_factory=list)
    version: str = "0.1.0"
    capability: str | None = None
    plugin: str | None = None
    extractor: Extractor | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def openai_schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "version": self.version,
                "plugin": self.plugin, "capability": self.capability,
                "parameters": self.parameters, "examples": self.examples}

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check arguments against the schema; ``InvalidInput`` names what is wrong."""
        if not isinstance(arguments, dict):
            raise InvalidInput(f"arguments for {self.name} must be an object")
        try:
            model = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidInput(f"invalid arguments for {self.name}: {problems}") from None
        return {k: getattr(model, k) for k in type(model).model_fields}

    def invoke(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        kwargs = self.validate(arguments)
        if self.context_param:
            kwargs[self.context_param] = context
        out = self.fn(**kwargs)
        return out if isinstance(out, ToolResult) else ToolResult(data=out)


Extractor = Callable[[str, ToolContext], dict[str, Any]]
"""Deterministic argument filling: (message, context) -> arguments. Raise ``ToolError`` if
the message lacks what the tool needs; return ``{}`` to let the agent ask the LLM instead."""


def _is_context(annotation: Any) -> bool:
    """``ToolContext`` or ``ToolContext | None``."""
    return annotation is ToolContext or ToolContext in typing.get_args(annotation)


def _description(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip() or fn.__name__.replace("_", " ")


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    examples: list[str] | None = None,
    version: str = "0.1.0",
    capability: str | None = None,
    extractor: Extractor | None = None,
) -> Tool:
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    context_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(pname, Any)
        if _is_context(annotation):
            context_param = pname
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {fn.__name__}: *args/**kwargs are not supported")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    tool_name = name or fn.__name__
    args_model = create_model(
        f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    return Tool(
        name=tool_name, description=_description(fn), fn=fn, args_model=args_model,
        context_param=context_param, examples=list(examples or []), version=version,
        capability=capability, extractor=extractor,
    )


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    examples: list[str] | None = None,
    version: str = "0.1.0",
    capability: str | None = None,
    extractor: Extractor | None = None,
) -> Any:
    """Decorator: ``@tool`` or ``@tool(examples=[...], version="1.0")``.

    ``examples`` are utterances (English and Chinese) that should route to this tool;
    the router is trained from them. ``capability`` names what the tool is for
    (``image``, ``text``, ``recommend``, ``knowledge``) so benchmarks can map to it.
    ``extractor`` fills arguments from the user's message without the LLM.
    """
    def wrap(f: Callable[..., Any]) -> Tool:
        return make_tool(f, name=name, examples=examples, version=version,
                         capability=capability, extractor=extractor)

    return wrap(fn) if fn is not None else wrap
