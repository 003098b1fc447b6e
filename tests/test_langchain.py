"""The LangChain adapter: registry tools as ``StructuredTool``s with the same schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from assistant.config import load_settings
from assistant.integrations.langchain import langchain_tools
from assistant.registry import ToolRegistry
from assistant.uploads import UploadStore
from tests.support.api_tools import add_all, png


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry()
    add_all(reg)
    return reg


def test_every_tool_becomes_a_structured_tool_with_its_schema(registry: ToolRegistry) -> None:
    tools = {t.name: t for t in langchain_tools(registry, tenant="acme")}
    assert set(tools) == set(registry.names())
    for name, lc_tool in tools.items():
        assert isinstance(lc_tool, StructuredTool)
        ours = registry.get(name)
        assert lc_tool.description == ours.description
        spec = convert_to_openai_tool(lc_tool)["function"]
        assert spec["name"] == name
        assert spec["parameters"].get("required", []) == ours.parameters.get("required", [])
        assert set(spec["parameters"].get("properties", {})) == set(ours.parameters["properties"])


def test_calls_return_text_and_an_artifact_with_provenance(registry: ToolRegistry) -> None:
    halve = next(t for t in langchain_tools(registry, tenant="acme") if t.name == "halve")
    message = halve.invoke({"type": "tool_call", "id": "call-1", "name": "halve", "args": {"n": 8}})
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call-1"
    assert message.content.startswith("8 / 2 = 4") and message.status == "success"
    assert message.artifact["data"] == {"half": 4}
    assert message.artifact["provenance"] == {"model": "arithmetic", "model_version": "1", "confidence": 1.0}
    assert halve.invoke({"n": 6}).startswith("6 / 2 = 3")


def test_tool_errors_and_bad_arguments_come_back_as_readable_text(registry: ToolRegistry) -> None:
    halve = next(t for t in langchain_tools(registry, tenant="acme") if t.name == "halve")
    odd = halve.invoke({"type": "tool_call", "id": "c2", "name": "halve", "args": {"n": 9}})
    assert odd.status == "error" and odd.content == "9 is odd: only even numbers can be halved"
    bad = halve.invoke({"type": "tool_call", "id": "c3", "name": "halve", "args": {"n": "nine"}})
    assert bad.status == "error" and bad.content.startswith("invalid arguments: n:")


def test_files_and_tenant_reach_the_tool_context(registry: ToolRegistry, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, plugins=[])
    store = UploadStore(tmp_path / "uploads", 1_000_000, 1_000_000)
    upload = store.save(png((0, 0, 250), (30, 20)), "blue.png", "acme")
    describe = next(t for t in langchain_tools(registry, tenant="acme", settings=settings,
                                               files=lambda: [upload]) if t.name == "describe_image")
    message = describe.invoke({"type": "tool_call", "id": "c4", "name": "describe_image", "args": {}})
    assert message.artifact["data"] == {"width": 30, "height": 20, "colour": "blue"}
    assert message.artifact["sources"][0]["title"] == "Colour chart"
    no_file = next(t for t in langchain_tools(registry, tenant="acme") if t.name == "describe_image")
    assert no_file.invoke({}) == "attach an image first"
