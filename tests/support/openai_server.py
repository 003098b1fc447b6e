"""A small OpenAI-compatible ``/v1/chat/completions`` server for tests, run as a subprocess.

It speaks the real wire format (JSON, SSE with ``data: [DONE]``, tool calls whose arguments
are JSON strings, streamed in fragments) over a Mentorly backend: the scripted fake
(``--script replies.json``) or the real local model (``--backend local``). It binds
127.0.0.1 on a free port and prints that port as its first line of output.

Extras for tests: ``--api-key`` requires a Bearer token (401 otherwise); a model named
``slow:<seconds>`` sleeps before answering; a script entry ``{"error": ...}`` answers HTTP 500;
``GET /requests`` lists the bodies and Authorization headers received.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.config import load_settings
from assistant.errors import MentorlyError
from assistant.llm.base import ChatBackend, ChatResult, ToolCall
from assistant.llm.fake import FakeBackend


def _native(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in calls
    ]


def _usage(result: ChatResult) -> dict[str, int]:
    p, c = result.usage.prompt_tokens, result.usage.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def create_app(backend: ChatBackend, api_key: str | None) -> FastAPI:
    app = FastAPI()
    received: list[dict[str, Any]] = []

    @app.get("/requests")
    def requests_seen() -> list[dict[str, Any]]:
        return received

    @app.post("/v1/chat/completions", response_model=None)
    def completions(
        request: Request,
        body: dict[str, Any] = Body(...),  # noqa: B008
    ) -> JSONResponse | StreamingResponse:
        auth = request.headers.get("authorization")
        received.append({"body": body, "authorization": auth})
        if api_key is not None and auth != f"Bearer {api_key}":
            return JSONResponse(
                {"error": {"message": "Invalid API Key", "type": "authentication_error"}}, 401
            )
        model = str(body.get("model", ""))
        if model.startswith("slow:"):
            time.sleep(float(model.split(":", 1)[1]))
        tools = body.get("tools")
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        kwargs = {
            "tools": tools,
            "max_tokens": body.get("max_tokens"),
            "temperature": body.get("temperature"),
        }
        cid = "chatcmpl-" + uuid.uuid4().hex[:16]
        try:
            if not body.get("stream"):
                result = backend.chat(body["messages"], json_schema=schema, **kwargs)
                message: dict[str, Any] = {"role": "assistant", "content": result.content or None}
                if result.tool_calls:
                    message["tool_calls"] = _native(result.tool_calls)
                return JSONResponse(
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason}],
                        "usage": _usage(result),
                    }
                )
            chunks = list(backend.stream(body["messages"], **kwargs))
        except MentorlyError as exc:
            return JSONResponse({"error": {"message": exc.message, "type": exc.error_type}}, 500)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_sse(cid, model, chunks, include_usage), media_type="text/event-stream")

    return app


def _sse(cid: str, model: str, chunks: list[Any], include_usage: bool) -> Iterator[str]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        data = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        return f"data: {json.dumps({**data, 'choices': choices, **extra})}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    final: ChatResult | None = None
    for chunk in chunks:
        if chunk.text:
            yield event([{"index": 0, "delta": {"content": chunk.text}, "finish_reason": None}])
        if chunk.final is not None:
            final = chunk.final
    assert final is not None
    for i, call in enumerate(final.tool_calls):
        args = json.dumps(call.arguments)
        head = {
            "index": i,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield event([{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}])
        third = max(1, len(args) // 3)
        for start in range(0, len(args), third):  # arguments arrive in fragments
            piece = {"index": i, "function": {"arguments": args[start : start + third]}}
            yield event([{"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": final.finish_reason}])
    if include_usage:
        yield event([], usage=_usage(final))
    yield "data: [DONE]\n\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["fake", "local"], default="fake")
    parser.add_argument("--script", type=Path, help="JSON list of fake replies")
    parser.add_argument("--api-key")
    args = parser.parse_args(argv)
    backend: ChatBackend
    if args.backend == "local":
        from assistant.llm.local import LocalBackend

        backend = LocalBackend(load_settings(), progress=False)
    else:
        script = json.loads(args.script.read_text(encoding="utf-8")) if args.script else []
        backend = FakeBackend(script=script)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(create_app(backend, args.api_key), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
