"""The MCP server: the SDK's own client over streamable HTTP at ``/mcp`` (key required) and
over stdio against a ``mentorly mcp`` subprocess; tool errors arrive as readable text."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import REPO_ROOT
from tests.support.live_api import make_runtime, serve


class Env:
    def __init__(self, url: str, app: Any) -> None:
        self.url = url + "/mcp"
        self.tools_key, _ = app.state.keys.create("acme", "tools")
        self.chat_key, _ = app.state.keys.create("acme", "chat")
        self.app = app


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    server, app = serve(make_runtime(tmp_path_factory.mktemp("mcp"), tools=True))
    yield Env(server.url, app)
    server.stop()


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def _session(env: Env, key: str) -> dict[str, Any]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(env.url, http_client=http)) as client:
        tools = await client.list_tools()
        ok = await client.call_tool("halve", {"n": 12})
        odd = await client.call_tool("halve", {"n": 5})
        bad = await client.call_tool("halve", {"n": "lots"})
        unknown = await client.call_tool("no_such_tool", {})
        count = await client.call_tool("word_count", {"text": "一 二 three"})
    return {"tools": tools, "ok": ok, "odd": odd, "bad": bad, "unknown": unknown, "count": count}


def test_mcp_over_http_lists_and_calls_the_registry(env: Env) -> None:
    out = anyio.run(_session, env, env.tools_key)
    tools = {t.name: t for t in out["tools"].tools}
    assert set(tools) == {"word_count", "halve", "describe_image"}
    assert tools["halve"].input_schema["properties"]["n"]["type"] == "integer"
    assert "even integer" in (tools["halve"].description or "")
    ok = out["ok"]
    assert not ok.is_error and "12 / 2 = 6" in _text(ok)
    assert ok.structured_content["data"] == {"half": 6}
    assert ok.structured_content["provenance"]["model"] == "arithmetic"
    for name, expected in (("odd", "5 is odd: only even numbers can be halved"),
                           ("bad", "invalid arguments for halve"),
                           ("unknown", "no tool named 'no_such_tool'")):
        result = out[name]
        assert result.is_error, name
        assert expected in _text(result) and "Error executing tool" not in _text(result)
    assert out["count"].structured_content["data"] == {"words": 3, "chars": 9}
    metrics = httpx.get(env.url.removesuffix("/mcp") + "/metrics").text
    assert 'mentorly_tool_calls_total{outcome="error",surface="mcp",tool="halve"}' in metrics
    # MCP calls are billed like HTTP tool calls: the successful ones, to the key's tenant
    usage = {row.group: row.tool_calls for row in env.app.state.meter.report(group_by="tool", tenant="acme")}
    assert usage.get("halve", 0) >= 1 and usage.get("word_count", 0) >= 1


def test_mcp_over_http_needs_a_key_with_the_tools_scope(env: Env) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(env.url, json=body, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    r = httpx.post(env.url, json=body, headers={**headers, "Authorization": f"Bearer {env.chat_key}"})
    assert r.status_code == 403 and "'tools' scope" in r.json()["error"]["message"]
    # a host outside the allowlist (DNS rebinding) is refused even with a key
    r = httpx.post(env.url, json=body, headers={**headers, "Authorization": f"Bearer {env.tools_key}",
                                                "Host": "evil.example"})
    assert r.status_code == 421
    # the SDK client fails to connect with an unknown key (the server answered 401)
    def refused() -> float:
        metrics = httpx.get(env.url.removesuffix("/mcp") + "/metrics").text
        line = next((x for x in metrics.splitlines() if x.startswith("mentorly_http_requests_total")
                     and 'route="/mcp"' in x and 'status="401"' in x), "x 0")
        return float(line.rsplit(" ", 1)[1])

    before = refused()
    with pytest.raises(ExceptionGroup) as failure:
        anyio.run(_session, env, "mk_AAAAAAAAAAAA_" + "A" * 43)
    assert failure.group_contains(MCPError)
    assert refused() > before


async def _stdio(home: str) -> tuple[list[str], Any, Any]:
    env = {**os.environ, "MENTORLY_HOME": home, "MENTORLY_PLUGINS": '["tests.support.api_tools"]',
           "MENTORLY_LLM__BACKEND": "fake", "PYTHONPATH": str(REPO_ROOT)}
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "mentorly_app", "mcp", "--tenant", "desk"], env=env,
                                   cwd=str(REPO_ROOT))
    async with Client(params, read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        ok = await client.call_tool("word_count", {"text": "hello MCP world"})
        err = await client.call_tool("halve", {"n": 3})
    return [t.name for t in tools.tools], ok, err


def test_mentorly_mcp_serves_the_registry_over_stdio(tmp_path: Any) -> None:
    names, ok, err = anyio.run(_stdio, str(tmp_path))
    assert sorted(names) == ["describe_image", "halve", "word_count"]
    assert not ok.is_error and ok.structured_content["data"] == {"words": 3, "chars": 15}
    assert err.is_error and "3 is odd" in _text(err)


def test_mcp_tool_calls_count_against_the_daily_quota(tmp_path: Any) -> None:
    server, app = serve(make_runtime(tmp_path, tools=True, quotas={"tool_calls_per_day_per_key": 1}))
    try:
        key, _ = app.state.keys.create("acme", "tools")

        async def two_calls() -> tuple[Any, Any]:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
            async with http, Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                return (await client.call_tool("halve", {"n": 8}),
                        await client.call_tool("halve", {"n": 8}))

        first, second = anyio.run(two_calls)
        assert not first.is_error and "8 / 2 = 4" in _text(first)
        assert second.is_error and "tool calls for today" in _text(second)
    finally:
        server.stop()
