"""Small tools for the developer-API tests, also loadable as a plugin
(``MENTORLY_PLUGINS='["tests.support.api_tools"]'``) by a ``mentorly mcp`` subprocess."""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

from assistant import Source, Tool, ToolContext, ToolError, ToolResult, hookimpl, tool


@tool(capability="text", version="1.0.0", examples=["How many words are in this sentence?"])
def word_count(text: str) -> dict[str, int]:
    """Count the words and characters of a text."""
    return {"words": len(text.split()), "chars": len(text)}


@tool(capability="math", version="2.1.0", examples=["Halve 10"])
def halve(n: int) -> ToolResult:
    """Halve an even integer; odd numbers are refused with a readable error."""
    if n % 2:
        raise ToolError(f"{n} is odd: only even numbers can be halved")
    return ToolResult({"half": n // 2}, summary=f"{n} / 2 = {n // 2}", model="arithmetic",
                      model_version="1", confidence=1.0)


@tool(capability="image", version="0.3.0", examples=["What is in this picture?"])
def describe_image(context: ToolContext) -> ToolResult:
    """Describe the attached image: its size and its dominant colour."""
    upload = context.image
    if upload is None:
        raise ToolError("attach an image first")
    with Image.open(upload.path) as im:
        r, g, b = im.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    colour = max((("red", r), ("green", g), ("blue", b)), key=lambda p: p[1])[0]
    return ToolResult({"width": upload.width, "height": upload.height, "colour": colour},
                      summary=f"a {upload.width}×{upload.height} mostly {colour} image",
                      model="pixel-stats", model_version="0.3", confidence=0.9,
                      sources=[Source(title="Colour chart", text="red, green and blue",
                                      uri="https://example.org/colours")])


def png(colour: tuple[int, int, int] = (220, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    """A real PNG of one colour."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


TOOLS: tuple[Tool, ...] = (word_count, halve, describe_image)


def add_all(registry: object) -> None:
    for t in TOOLS:
        registry.add(t)  # type: ignore[attr-defined]


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    for t in TOOLS:
        register(t)
