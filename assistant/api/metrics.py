"""``GET /metrics`` in the Prometheus text format: requests, latencies, tool calls, tokens.

Each app gets its own ``CollectorRegistry`` (several apps in one test process must not clash).
The middleware is plain ASGI: it labels by route template (``/api/tools/{name}``), never by the
raw path, so unknown URLs cannot blow up the number of series.

Who may read it is ``api.metrics``: ``loopback`` (the default: a scraper on the same machine;
behind a reverse proxy on that machine, uvicorn takes the client from ``X-Forwarded-For`` sent
by 127.0.0.1, so remote clients still read as remote), ``public``, ``key`` (admin scope) or
``off``. The route labels and counts reveal traffic, tool use and token volume per deployment.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.admission import GateState
from assistant.api.auth import authenticate_request, check_scope
from assistant.errors import Forbidden, NotFound
from assistant.security import ADMIN

disable_created_metrics()  # no "*_created" gauge per series: they double the output for nothing
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("mentorly_http_requests", "HTTP requests served",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("mentorly_http_request_duration_seconds",
                                 "Time to serve a request (whole stream for SSE)",
                                 ["method", "route"], buckets=_BUCKETS, registry=self.registry)
        self.tool_calls = Counter("mentorly_tool_calls", "Tool invocations",
                                  ["tool", "outcome", "surface"], registry=self.registry)
        self.tokens = Counter("mentorly_llm_tokens", "LLM tokens used by chat turns",
                              ["kind"], registry=self.registry)
        self.turns = Counter("mentorly_chat_turns", "Chat turns", ["surface", "outcome"],
                             registry=self.registry)

    def watch_turns(self, state: Callable[[], GateState]) -> None:
        """Gauges read from the turn gate at scrape time: turns running, turns in line."""
        running = Gauge("mentorly_chat_turns_running", "Chat turns running now", registry=self.registry)
        waiting = Gauge("mentorly_chat_turns_waiting", "Chat turns waiting in line (all slots busy)",
                        registry=self.registry)
        capacity = Gauge("mentorly_chat_turns_capacity", "Turns that may run at once plus places "
                         "in line; beyond it turns are refused with 429", registry=self.registry)
        running.set_function(lambda: state().running)
        waiting.set_function(lambda: state().waiting)
        capacity.set_function(lambda: state().capacity)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def tool_call(self, tool: str, ok: bool, surface: str) -> None:
        self.tool_calls.labels(tool, "ok" if ok else "error", surface).inc()

    def add_tokens(self, usage: dict[str, Any]) -> None:
        for kind in ("prompt_tokens", "completion_tokens"):
            value = usage.get(kind) or 0
            if value > 0:
                self.tokens.labels(kind.removesuffix("_tokens")).inc(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """``prefixes``: mounted sub-apps (``/mcp``, ``/ui``) labelled by their prefix, since the
    router does not expose their route to an outer middleware."""

    def __init__(self, app: ASGIApp, metrics: Metrics, prefixes: tuple[str, ...] = ("/mcp", "/ui")) -> None:
        self.app = app
        self.metrics = metrics
        self.prefixes = prefixes

    def _label(self, scope: Scope) -> str:
        route = getattr(scope.get("route"), "path", None)
        if route:
            return str(route)
        path = scope.get("path", "")
        return next((p for p in self.prefixes if path == p or path.startswith(p + "/")), "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe_request(scope["method"], self._label(scope), status,
                                         time.perf_counter() - started)


router = APIRouter()


@router.get("/metrics", operation_id="metrics", tags=["service"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics, for whom ``api.metrics`` allows: by default clients on this machine."""
    mode = request.app.state.runtime.settings.api.metrics
    if mode == "off":
        raise NotFound("/metrics is turned off (api.metrics = 'off')")
    if mode == "loopback" and not is_loopback(request.client.host if request.client else None):
        raise Forbidden("/metrics answers only clients on this machine (127.0.0.1, ::1); "
                        "set api.metrics to 'key' (admin scope) to scrape it from elsewhere")
    if mode == "key":
        principal = await authenticate_request(request.headers.get("authorization"), request.app.state.keys,
                                               request.app.state.limiter)
        check_scope(principal, ADMIN)
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; a host name (or none) is not loopback."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
