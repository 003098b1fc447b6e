"""``GET /api/tools`` and ``POST /api/tools/{name}``: the registry, and direct invocation."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from fastapi import APIRouter, Request

from assistant.api.auth import RuntimeDep, ToolsKey
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse, ToolCallRequest, ToolCallResult, ToolInfo
from assistant.errors import ToolTimeout
from assistant.language import detect_language
from assistant.tooling import ToolContext

router = APIRouter(tags=["tools"])


def jsonable(value: Any) -> Any:
    """Tool data as plain JSON (numpy numbers, paths, dates become what ``str`` makes of them)."""
    return json.loads(json.dumps(value, default=str))


@router.get("/api/tools", operation_id="list_tools", response_model=list[ToolInfo],
            responses=ERROR_RESPONSES)
def list_tools(_principal: ToolsKey, runtime: RuntimeDep) -> list[ToolInfo]:
    """Every registered tool: name, description, JSON schema, version, plugin."""
    return [ToolInfo(**t.describe()) for t in runtime.registry]


@router.post("/api/tools/{name}", operation_id="call_tool", response_model=ToolCallResult,
             responses={**ERROR_RESPONSES, 504: {"model": ErrorResponse, "description": "tool timed out"}})
async def call_tool(name: str, body: ToolCallRequest, request: Request, principal: ToolsKey,
                    runtime: RuntimeDep) -> ToolCallResult:
    """Run one tool without the LLM; arguments are validated against its schema first (422)."""
    tool = runtime.registry.get(name)
    arguments = tool.validate(body.arguments)  # 422 before any upload lookup or thread hop
    files = [runtime.uploads.get(principal.tenant, upload_id) for upload_id in body.uploads]
    text = " ".join(v for v in arguments.values() if isinstance(v, str))
    context = ToolContext(tenant=principal.tenant, user=f"key:{principal.key_prefix}", files=files,
                          settings=runtime.settings, message=text, language=detect_language(text))
    timeout = runtime.settings.tools.timeout_s
    metrics = request.app.state.metrics
    started = time.perf_counter()
    ok = False
    try:
        with anyio.fail_after(timeout):
            result = await anyio.to_thread.run_sync(tool.invoke, body.arguments, context,
                                                    abandon_on_cancel=True)
        ok = True
    except TimeoutError:
        raise ToolTimeout(f"{name} did not finish within {timeout:g} s") from None
    finally:
        metrics.tool_call(name, ok, "api")
    return ToolCallResult(tool=tool.name, data=jsonable(result.data), summary=result.summary,
                          provenance=result.provenance(), sources=[s.to_dict() for s in result.sources],
                          duration_ms=round((time.perf_counter() - started) * 1000, 3))
