"""The tool registry as LangChain tools (``langchain-core``'s ``StructuredTool``).

Each tool keeps its name, docstring and pydantic argument model, so LangChain agents see the
same JSON schema as the HTTP API and MCP. The tool runs in-process with a ``ToolContext`` for
the given tenant and user; a ``ToolError`` (or invalid arguments) comes back to the agent as
its message (``handle_tool_error``), so the model can read it and recover.

    from assistant.integrations.langchain import langchain_tools
    tools = langchain_tools(runtime.registry, tenant="acme", settings=runtime.settings)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import StructuredTool, ToolException

from assistant.errors import MentorlyError
from assistant.language import detect_language
from assistant.registry import ToolRegistry
from assistant.tooling import Tool, ToolContext, Upload


def _render(tool: Tool, context: ToolContext, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        result = tool.invoke(arguments, context)
    except MentorlyError as exc:
        raise ToolException(exc.message) from exc
    data = json.loads(json.dumps(result.data, default=str))
    artifact = {"data": data, "summary": result.summary, "provenance": result.provenance(),
                "sources": [s.to_dict() for s in result.sources]}
    text = json.dumps(data, ensure_ascii=False)
    return (f"{result.summary}\n{text}" if result.summary else text), artifact


def as_langchain_tool(tool: Tool, *, tenant: str, user: str = "langchain", settings: Any = None,
                      files: Callable[[], Sequence[Upload]] | None = None) -> StructuredTool:
    """One registry tool as a ``StructuredTool`` (content = text, artifact = data + provenance)."""

    def run(**arguments: Any) -> tuple[str, dict[str, Any]]:
        text = " ".join(v for v in arguments.values() if isinstance(v, str))
        context = ToolContext(tenant=tenant, user=user, files=list(files() if files else ()),
                              settings=settings, message=text, language=detect_language(text))
        return _render(tool, context, arguments)

    return StructuredTool.from_function(
        func=run, name=tool.name, description=tool.description, args_schema=tool.args_model,
        infer_schema=False, response_format="content_and_artifact", handle_tool_error=True,
        handle_validation_error=_validation_message)


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"invalid arguments: {exc}"
    return "invalid arguments: " + "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'arguments'}: {e.get('msg')}" for e in errors())


def langchain_tools(registry: ToolRegistry, *, tenant: str, user: str = "langchain", settings: Any = None,
                    files: Callable[[], Sequence[Upload]] | None = None) -> list[StructuredTool]:
    """Every tool in ``registry`` as a LangChain tool."""
    return [as_langchain_tool(t, tenant=tenant, user=user, settings=settings, files=files) for t in registry]
