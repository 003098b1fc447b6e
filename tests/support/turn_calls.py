"""Chat turns against a live server, read as they arrive: every SSE event, comment and chunk
with its arrival time, so tests can check orderings (who waited, who ran first, when pings came)
and can leave mid-stream like a browser tab that is closed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

SITE = "https://school.example"


@dataclass
class Item:
    t: float
    kind: str  # an event name ("text_delta", "queued", ...), "chunk" (/v1), "comment", "[DONE]"
    data: Any


@dataclass
class Surface:
    """One way into a turn: ``/api/chat``, ``/v1/chat/completions`` or the widget."""

    name: str
    path: str
    request: Callable[[str, bool], dict[str, Any]]  # (message, stream) -> httpx keyword arguments


def surfaces(api_key: str, widget_key: str, widget_token: str) -> dict[str, Surface]:
    bearer = {"Authorization": f"Bearer {api_key}"}
    return {
        "api": Surface("api", "/api/chat", lambda m, s: {
            "json": {"message": m, "stream": s}, "headers": bearer}),
        "v1": Surface("v1", "/v1/chat/completions", lambda m, s: {
            "json": {"model": "mentorly", "stream": s, "messages": [{"role": "user", "content": m}]},
            "headers": bearer}),
        "widget": Surface("widget", "/widget/api/chat", lambda m, s: {
            "content": json.dumps({"key": widget_key, "token": widget_token, "message": m}),
            "headers": {"Origin": SITE, "Content-Type": "text/plain"}}),
    }


def echo(message: str) -> str:
    """The scripted fake's answer when its script is empty (see ``assistant.llm.fake``)."""
    from assistant.llm.fake import echo_reply

    return echo_reply([{"role": "user", "content": message}])


@dataclass
class Call:
    """One request; ``run`` reads it to the end, or until ``leave_when(self)`` says to go."""

    surface: Surface
    message: str
    stream: bool = True
    leave_when: Callable[[Call], bool] | None = None
    status: int | None = None
    headers: httpx.Headers | None = None
    body: Any = None  # the JSON of a non-streamed answer or of an error
    items: list[Item] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float | None = None  # when the response was over (or left)
    ended: bool = False
    left: bool = False

    async def run(self, client: httpx.AsyncClient, base_url: str) -> Call:
        self.started_at = time.monotonic()
        try:
            return await self._read(client, base_url)
        finally:
            self.ended_at = time.monotonic()

    async def _read(self, client: httpx.AsyncClient, base_url: str) -> Call:
        kwargs = self.surface.request(self.message, self.stream)
        async with client.stream("POST", base_url + self.surface.path, **kwargs) as r:
            self.status, self.headers = r.status_code, r.headers
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                await r.aread()
                self.body = r.json()
                self.ended = True
                return self
            name: str | None = None
            async for line in r.aiter_lines():
                now = time.monotonic()
                if line.startswith(":"):
                    self.items.append(Item(now, "comment", line[1:].strip()))
                elif line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    raw = line.split(":", 1)[1].strip()
                    if raw == "[DONE]":
                        self.items.append(Item(now, "[DONE]", None))
                    else:
                        data = json.loads(raw)
                        kind = name or ("error" if "error" in data else "chunk")
                        self.items.append(Item(now, kind, data))
                    name = None
                else:
                    continue
                if self.leave_when is not None and self.leave_when(self):
                    self.left = True
                    return self  # closes the connection mid-stream
        self.ended = True
        return self

    # -- what arrived --------------------------------------------------------------------------

    def _pieces(self) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        for item in self.items:
            if item.kind == "text_delta":
                out.append((item.t, item.data["text"]))
            elif item.kind == "chunk":
                content = (item.data["choices"] or [{}])[0].get("delta", {}).get("content")
                if content:
                    out.append((item.t, content))
        return out

    @property
    def text(self) -> str:
        if self.body is not None and self.status == 200:
            if "choices" in self.body:
                return str(self.body["choices"][0]["message"]["content"])
            return str(self.body["text"])
        return "".join(piece for _t, piece in self._pieces())

    @property
    def first_content_at(self) -> float | None:
        pieces = self._pieces()
        return pieces[0][0] if pieces else None

    @property
    def content_count(self) -> int:
        return len(self._pieces())

    @property
    def finished_at(self) -> float | None:
        """When the answer was complete: the ``done`` event, or ``[DONE]`` after /v1 chunks."""
        for item in self.items:
            if item.kind == "done" or (item.kind == "[DONE]" and self.surface.name == "v1"
                                       and not self.errors):
                return item.t
        return None

    @property
    def errors(self) -> list[Any]:
        return [item.data for item in self.items if item.kind == "error"]

    @property
    def places(self) -> list[dict[str, Any]]:
        """The places in line this call was told, from ``queued`` events or ``/v1`` comments."""
        out: list[dict[str, Any]] = []
        for item in self.items:
            if item.kind == "queued":
                out.append(item.data)
            elif item.kind == "comment" and item.data.startswith("queued "):
                fields = dict(part.split("=", 1) for part in item.data.split()[1:])
                out.append({"position": int(fields["position"]),
                            "retry_after_s": int(fields["retry_after_s"])})
        return out

    @property
    def pings(self) -> list[float]:
        return [item.t for item in self.items if item.kind == "comment" and item.data == "ping"]

    def kinds(self) -> list[str]:
        return [item.kind for item in self.items]


async def until(check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(0.005)
