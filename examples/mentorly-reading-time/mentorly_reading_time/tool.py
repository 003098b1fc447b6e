"""The ``reading_time`` tool: the words (or Chinese characters) of a text and its reading time."""

from __future__ import annotations

import re

from assistant import ToolContext, ToolError, ToolResult, tool

from .examples import EXAMPLES

TOOL_VERSION = "0.1.0"
WORDS_PER_MINUTE = 230
CHARS_PER_MINUTE = 500  # Chinese reading speed, characters


def _extract(message: str, context: ToolContext) -> dict[str, str]:
    """The text to measure is whatever follows a colon, or the whole message."""
    _, sep, rest = message.partition(":") if ":" in message else message.partition("：")
    return {"text": rest.strip()} if sep and rest.strip() else {}


@tool(version=TOOL_VERSION, extractor=_extract, examples=EXAMPLES)
def reading_time(text: str, context: ToolContext) -> ToolResult:
    """Count the words (or Chinese characters) of a text and estimate its reading time."""
    if not text.strip():
        raise ToolError("there is no text to measure")
    han = len(re.findall(r"[\u4e00-\u9fff]", text))
    words = len(re.findall(r"[A-Za-z0-9']+", text))
    minutes = words / WORDS_PER_MINUTE + han / CHARS_PER_MINUTE
    summary = (f"{words} words and {han} Chinese characters: about {max(minutes, 0.1):.1f} "
               "minutes of reading")
    return ToolResult(data={"words": words, "chinese_characters": han, "minutes": round(minutes, 2)},
                      summary=summary, model="reading-time-heuristic", model_version=TOOL_VERSION,
                      confidence=1.0)
