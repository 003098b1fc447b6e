"""The tool registry as LangChain tools (``langchain-core``'s ``StructuredTool``).

Each tool keeps its name, docstring and pydantic argument model, so LangChain agents see the
same JSON schema as the HTTP API and MCP. A call goes through the runtime's one tool-call path
(``runtime.tool_calls``: validation, timeout, quotas and metering) for the given tenant and
user, so it is metered like any other direct call (a ``langchain`` row in the usage table). A
``MentorlyError`` (a ``ToolError``, invalid arguments, a timeout, a quota) comes back to the agent
as its message (``handle_tool_error``), so the model can read it and recover.

    from assistant.integrations.langchain import langchain_tools
    tools = langchain_tools(runtime, tenant="acme")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import StructuredTool, ToolException

from assistant.billing import install_metering
from assistant.caller import Caller
from assistant.errors import MentorlyError
from assistant.runtime import Runtime
from assistant.tool_calls import ToolCaller
from assistant.tooling import Tool, ToolResult, Upload


def _render(result: ToolResult) -> tuple[str, dict[str, Any]]:
    data = json.loads(json.dumps(result.data, default=str))
    artifact = {"data": data, "summary": result.summary, "provenance": result.provenance(),
                "sources": [s.to_dict() for s in result.sources]}
    text = json.dumps(data, ensure_ascii=False)
    return (f"{result.summary}\n{text}" if result.summary else text), artifact


def as_langchain_tool(tool: Tool, tool_calls: ToolCaller, caller: Caller,
                      files: Callable[[], Sequence[Upload]] | None = None) -> StructuredTool:
    """One registry tool as a ``StructuredTool`` (content = text, artifact = data + provenance).
    ``files`` is asked for the call's uploads each time the tool runs."""

    def run(**arguments: Any) -> tuple[str, dict[str, Any]]:
        try:
            result = tool_calls.call(tool, arguments, caller, files=files or ())
        except MentorlyError as exc:
            raise ToolException(exc.message) from exc
        return _render(result)

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


def langchain_tools(runtime: Runtime, *, tenant: str, user: str = "langchain",
                    files: Callable[[], Sequence[Upload]] | None = None) -> list[StructuredTool]:
    """Every tool in ``runtime.registry`` as a LangChain tool, acting for ``tenant``/``user``.

    Metering (``assistant.billing``) is registered on the runtime if nothing has yet, so the
    calls count in ``mentorly usage`` and against the tenant's quotas."""
    install_metering(runtime)
    caller = Caller(tenant=tenant, user=user, surface="langchain")
    return [as_langchain_tool(t, runtime.tool_calls, caller, files) for t in runtime.registry]
