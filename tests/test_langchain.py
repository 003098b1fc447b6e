"""The LangChain adapter: registry tools as ``StructuredTool``s with the same schemas, called
through the runtime's one tool-call path (so metered like every other surface)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from sqlalchemy import select

from assistant.billing import Billing
from assistant.config import QuotaSettings, load_settings
from assistant.integrations.langchain import langchain_tools
from assistant.quotas import Quotas
from assistant.registry import ToolRegistry
from assistant.runtime import Runtime, build_runtime
from assistant.storage.usage import UsageRecord
from tests.support.api_tools import add_all, png


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return build_runtime(load_settings(home=tmp_path, plugins=[]), configure=add_all)


@pytest.fixture
def registry(runtime: Runtime) -> ToolRegistry:
    return runtime.registry


def test_every_tool_becomes_a_structured_tool_with_its_schema(runtime: Runtime, registry: ToolRegistry) -> None:
    tools = {t.name: t for t in langchain_tools(runtime, tenant="acme")}
    assert set(tools) == set(registry.names())
    for name, lc_tool in tools.items():
        assert isinstance(lc_tool, StructuredTool)
        ours = registry.get(name)
        assert lc_tool.description == ours.description
        spec = convert_to_openai_tool(lc_tool)["function"]
        assert spec["name"] == name
        assert spec["parameters"].get("required", []) == ours.parameters.get("required", [])
        assert set(spec["parameters"].get("properties", {})) == set(ours.parameters["properties"])


def test_calls_return_text_and_an_artifact_with_provenance(runtime: Runtime) -> None:
    halve = next(t for t in langchain_tools(runtime, tenant="acme") if t.name == "halve")
    message = halve.invoke({"type": "tool_call", "id": "call-1", "name": "halve", "args": {"n": 8}})
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call-1"
    assert message.content.startswith("8 / 2 = 4") and message.status == "success"
    assert message.artifact["data"] == {"half": 4}
    assert message.artifact["provenance"] == {"model": "arithmetic", "model_version": "1", "confidence": 1.0}
    assert halve.invoke({"n": 6}).startswith("6 / 2 = 3")


def test_tool_errors_and_bad_arguments_come_back_as_readable_text(runtime: Runtime) -> None:
    halve = next(t for t in langchain_tools(runtime, tenant="acme") if t.name == "halve")
    odd = halve.invoke({"type": "tool_call", "id": "c2", "name": "halve", "args": {"n": 9}})
    assert odd.status == "error" and odd.content == "9 is odd: only even numbers can be halved"
    bad = halve.invoke({"type": "tool_call", "id": "c3", "name": "halve", "args": {"n": "nine"}})
    assert bad.status == "error" and bad.content.startswith("invalid arguments: n:")


def test_files_and_tenant_reach_the_tool_context(runtime: Runtime) -> None:
    upload = runtime.uploads.save(png((0, 0, 250), (30, 20)), "blue.png", "acme")
    describe = next(t for t in langchain_tools(runtime, tenant="acme", files=lambda: [upload])
                    if t.name == "describe_image")
    message = describe.invoke({"type": "tool_call", "id": "c4", "name": "describe_image", "args": {}})
    assert message.artifact["data"] == {"width": 30, "height": 20, "colour": "blue"}
    assert message.artifact["sources"][0]["title"] == "Colour chart"
    no_file = next(t for t in langchain_tools(runtime, tenant="acme") if t.name == "describe_image")
    assert no_file.invoke({}) == "attach an image first"


def test_calls_are_metered_once_and_count_against_quotas(runtime: Runtime) -> None:
    tools = {t.name: t for t in langchain_tools(runtime, tenant="acme", user="notebook")}
    langchain_tools(runtime, tenant="acme")  # asked twice: still one meter, nothing counted twice
    assert tools["halve"].invoke({"n": 8}).startswith("8 / 2 = 4")
    assert tools["word_count"].invoke({"text": "one two"}).startswith('{"words": 2')
    tools["halve"].invoke({"type": "tool_call", "id": "c5", "name": "halve", "args": {"n": 9}})  # failed: not billed
    billing = runtime.usage_hooks.find(Billing)
    assert billing is not None
    rows = billing.meter.report(group_by="tool", tenant="acme")
    assert {(r.group, r.tool_calls, r.turns) for r in rows} == {("halve", 1, 0), ("word_count", 1, 0)}
    with runtime.db.session() as s:
        stored = s.execute(select(UsageRecord.user, UsageRecord.key, UsageRecord.surface)).all()
    assert set(stored) == {("notebook", "", "langchain")}
    billing.quotas = Quotas(QuotaSettings(tool_calls_per_day_per_user=2), billing.meter)
    refused = tools["halve"].invoke({"type": "tool_call", "id": "c6", "name": "halve", "args": {"n": 2}})
    assert refused.status == "error" and "2 tool calls for today" in refused.content


def test_the_readme_example_runs_offline_and_is_metered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Using Mentorly's tools from LangChain"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.setenv("MENTORLY_HOME", str(tmp_path / "home"))
    exec(compile(code.group(1), "README.md", "exec"), {})  # noqa: S102
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("positive") and lines[-1] == "classify_text 1"
