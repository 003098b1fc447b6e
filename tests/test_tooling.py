from __future__ import annotations

import pytest

from assistant import ToolContext, ToolResult, tool
from assistant.errors import InvalidInput
from assistant.tooling import make_tool


@tool(examples=["classify this", "分类一下"], version="2.1.0", capability="text")
def classify(text: str, labels: list[str] | None = None, top_k: int = 3,
             context: ToolContext | None = None) -> dict:
    """Classify a text into labels.

    Longer explanation that stays in the description."""
    return {"text": text, "labels": labels, "top_k": top_k, "user": context.user if context else None}


def test_schema_comes_from_type_hints_and_hides_the_context() -> None:
    schema = classify.parameters
    assert set(schema["properties"]) == {"text", "labels", "top_k"}
    assert schema["required"] == ["text"]
    assert schema["properties"]["top_k"]["default"] == 3
    assert schema["additionalProperties"] is False
    assert classify.description.startswith("Classify a text into labels.")
    assert (classify.version, classify.capability, classify.examples[1]) == ("2.1.0", "text", "分类一下")


def test_openai_schema_shape() -> None:
    fn = classify.openai_schema()["function"]
    assert fn["name"] == "classify" and fn["parameters"]["required"] == ["text"]


def test_optional_context_is_still_injected() -> None:
    assert classify.context_param == "context"
    assert classify.invoke({"text": "x"}, ToolContext("t", "u7")).data["user"] == "u7"


def test_invoke_validates_and_wraps_plain_results() -> None:
    @tool
    def add(a: int, b: int = 2, context: ToolContext = None) -> int:  # type: ignore[assignment]
        """Add."""
        assert context.user == "u1"
        return a + b

    out = add.invoke({"a": "40"}, ToolContext(tenant="t", user="u1"))
    assert isinstance(out, ToolResult) and out.data == 42


@pytest.mark.parametrize(
    "args, match",
    [({}, "text: Field required"), ({"text": "x", "top_k": "many"}, "top_k"),
     ({"text": "x", "bogus": 1}, "bogus"), ([1, 2], "must be an object")],
)
def test_bad_arguments_name_the_problem(args: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        classify.validate(args)  # type: ignore[arg-type]


def test_variadic_tools_are_refused() -> None:
    def bad(*args: int) -> int:
        return 0

    with pytest.raises(TypeError, match="not supported"):
        make_tool(bad)


def test_image_property_picks_the_first_image() -> None:
    from pathlib import Path

    from assistant.tooling import Upload

    ctx = ToolContext("t", "u", files=[Upload("a", Path("a"), "text/plain", 1),
                                       Upload("b", Path("b"), "image/png", 1)])
    assert ctx.image is not None and ctx.image.id == "b"
