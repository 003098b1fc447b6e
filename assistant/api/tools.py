"""``GET /api/tools`` and ``POST /api/tools/{name}``: the registry, and direct invocation."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assistant.api.auth import RuntimeDep, ToolsKey
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse, ToolCallRequest, ToolCallResult, ToolInfo
from assistant.caller import Caller
from assistant.tooling import Tool, ToolContext, ToolResult

router = APIRouter(tags=["tools"])


class ToolRunner:
    """Runs tools in worker threads, except tools that have proven trivial.

    A thread hop costs more than a trivial tool itself (about 0.1–1 ms, more on a loaded CPU),
    so after ``streak`` consecutive runs each under ``inline_s`` a tool runs on the event loop.
    Any inline run over ``inline_s`` sends it back to threads, where it must prove itself again:
    at worst one unexpectedly slow call delays the loop once. Model-backed tools never qualify.
    """

    def __init__(self, inline_s: float = 0.0005, streak: int = 50) -> None:
        self.inline_s = inline_s
        self.streak = streak
        self._fast_runs: dict[str, int] = {}

    def is_inline(self, name: str) -> bool:
        return self._fast_runs.get(name, 0) >= self.streak

    async def run(self, tool: Tool, arguments: dict[str, Any], context: ToolContext,
                  timeout: float) -> ToolResult:
        name = tool.name
        if self.is_inline(name):
            started = time.perf_counter()
            try:
                return tool.invoke(arguments, context)
            finally:
                if time.perf_counter() - started > self.inline_s:
                    self._fast_runs[name] = 0
        with anyio.fail_after(timeout):
            result, seconds = await anyio.to_thread.run_sync(_timed, tool, arguments, context,
                                                             abandon_on_cancel=True)
        fast = seconds <= self.inline_s
        self._fast_runs[name] = self._fast_runs.get(name, 0) + 1 if fast else 0
        return result


def _timed(tool: Tool, arguments: dict[str, Any], context: ToolContext) -> tuple[ToolResult, float]:
    """The tool's own time, in its worker thread (the hop is not the tool's cost)."""
    started = time.perf_counter()
    result = tool.invoke(arguments, context)
    return result, time.perf_counter() - started


def jsonable(value: Any) -> Any:
    """Tool data as plain JSON (numpy numbers, paths, dates become what ``str`` makes of them)."""
    return json.loads(json.dumps(value, default=str))


@router.get("/api/tools", operation_id="list_tools", response_model=list[ToolInfo],
            responses=ERROR_RESPONSES)
async def list_tools(_principal: ToolsKey, runtime: RuntimeDep) -> list[ToolInfo]:
    """Every registered tool: name, description, JSON schema, version, plugin."""
    return [ToolInfo(**t.describe()) for t in runtime.registry]


@router.post("/api/tools/{name}", operation_id="call_tool", response_model=ToolCallResult,
             responses={**ERROR_RESPONSES, 504: {"model": ErrorResponse, "description": "tool timed out"}})
async def call_tool(name: str, body: ToolCallRequest, request: Request, principal: ToolsKey,
                    runtime: RuntimeDep) -> JSONResponse:
    """Run one tool without the LLM; arguments are validated against its schema first (422)."""
    tool_calls = runtime.tool_calls
    # 422 before any upload lookup or thread hop: the uploads are looked up once the call is valid
    call = tool_calls.prepare(name, body.arguments, Caller.api_key(principal.tenant, principal.key_prefix),
                              files=lambda: [runtime.uploads.get(principal.tenant, upload_id)
                                             for upload_id in body.uploads])
    metrics = request.app.state.metrics
    started = time.perf_counter()
    ok = False
    try:
        result = await tool_calls.arun(call, runner=request.app.state.tool_runner)
        ok = True
    finally:
        metrics.tool_call(name, ok, "api")
    # Built as plain JSON (the shape of ``ToolCallResult``, which documents it): validating the
    # model again on the way out would cost more than a trivial tool does.
    return JSONResponse({"tool": call.tool.name, "data": jsonable(result.data), "summary": result.summary,
                         "provenance": result.provenance(), "sources": [s.to_dict() for s in result.sources],
                         "duration_ms": round((time.perf_counter() - started) * 1000, 3)})
