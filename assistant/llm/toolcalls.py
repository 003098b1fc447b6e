"""Tool calls out of model output: native OpenAI ``tool_calls`` and calls written as text.

Small models often answer a tool request with the call as JSON in ``content``
(``{"name": "classify_text", "arguments": {...}}``), sometimes wrapped in Qwen's
``<tool_call>...</tool_call>`` tags or a Markdown fence. Everything is normalised to
:class:`ToolCall` with ``arguments`` always a dict; anything that does not parse is no call,
and the text is kept.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from assistant.llm.base import ChatResult, ToolCall, Usage

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
# Text that may still turn into a tool call: hold it back while streaming.
_CALL_PREFIXES = ("{", "[{", "<tool_call>", "```json")


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


def tool_names(tools: Iterable[dict[str, Any]] | None) -> set[str]:
    """Function names declared in OpenAI-style tool schemas."""
    names: set[str] = set()
    for schema in tools or ():
        fn = schema.get("function", schema) if isinstance(schema, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def decode_arguments(raw: Any) -> dict[str, Any] | None:
    """A dict from arguments given as a dict or a JSON string; None when unusable."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def from_native(tool_calls: Iterable[dict[str, Any]] | None) -> list[ToolCall]:
    """OpenAI ``message.tool_calls`` entries to ToolCalls; malformed entries are dropped."""
    calls: list[ToolCall] = []
    for entry in tool_calls or ():
        if not isinstance(entry, dict):
            continue
        fn = entry.get("function") or {}
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            continue
        args = decode_arguments(fn.get("arguments"))
        if args is None:
            continue
        calls.append(ToolCall(name=name, arguments=args, id=str(entry.get("id") or new_call_id())))
    return calls


def _call_from_obj(obj: Any, allowed: set[str] | None) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # {"type": "function", "function": {...}}
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    if allowed is not None and name not in allowed:
        return None
    raw = obj.get("arguments", obj.get("parameters", {}))
    args = decode_arguments(raw)
    if args is None:
        return None
    return ToolCall(name=name, arguments=args, id=new_call_id())


def _calls_from_json(text: str, allowed: set[str] | None) -> list[ToolCall] | None:
    """Calls when ``text`` is exactly a JSON call or list of calls, else None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = [_call_from_obj(item, allowed) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def from_text(content: str, allowed: set[str] | None = None) -> tuple[str, list[ToolCall]]:
    """Find tool calls written as text; return (remaining text, calls).

    ``allowed``: when given, a text call must name one of these tools (so that a JSON answer
    that merely has a ``name`` key is not mistaken for a call).
    """
    if not content or not content.strip():
        return content, []
    if "<tool_call>" in content:
        calls: list[ToolCall] = []
        for match in _TAGGED.finditer(content):
            found = _calls_from_json(match.group(1), allowed)
            if found is None:
                return content, []
            calls.extend(found)
        return _TAGGED.sub("", content).strip(), calls
    stripped = content.strip()
    fenced = _FENCED.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    found = _calls_from_json(stripped, allowed)
    if found is not None:
        return "", found
    return content, []


def parse_message(
    content: str | None,
    native: Iterable[dict[str, Any]] | None,
    tools: list[dict[str, Any]] | None,
) -> tuple[str, list[ToolCall]]:
    """Content and tool calls of one assistant message; text calls only when tools were offered."""
    text = content or ""
    calls = from_native(native)
    if calls or not tools:
        return text, calls
    return from_text(text, tool_names(tools) or None)


class ToolCallDeltas:
    """Accumulates streamed ``delta.tool_calls`` pieces (argument strings arrive in fragments)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: Iterable[dict[str, Any]] | None) -> None:
        for delta in deltas or ():
            index = int(delta.get("index", len(self._calls)))
            slot = self._calls.setdefault(
                index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if delta.get("id"):
                slot["id"] = delta["id"]
            fn = delta.get("function") or {}
            if fn.get("name"):
                slot["function"]["name"] += fn["name"]
            args = fn.get("arguments")
            if isinstance(args, dict):
                slot["function"]["arguments"] = json.dumps(args)
            elif args:
                slot["function"]["arguments"] += args

    def native(self) -> list[dict[str, Any]]:
        return [self._calls[i] for i in sorted(self._calls)]


class TextCallGuard:
    """While streaming with tools offered, holds back text that may be a tool call written as text.

    Ordinary answers pass through as they arrive; text that starts like a call is held until the
    end, then either parsed into calls (and not shown) or released in one piece.
    """

    def __init__(self, tools: list[dict[str, Any]] | None) -> None:
        self._active = bool(tools)
        self._holding = False
        self._decided = not self._active
        self._buffer = ""
        self._text = ""

    def feed(self, delta: str) -> str:
        """Text that may be shown now."""
        self._text += delta
        if self._decided:
            return "" if self._holding else delta
        self._buffer += delta
        head = self._buffer.lstrip()
        if not head:
            return ""
        if any(head.startswith(p) for p in _CALL_PREFIXES):
            self._decided = self._holding = True
            return ""
        if any(p.startswith(head) for p in _CALL_PREFIXES):
            return ""  # still a possible prefix, e.g. "<tool"
        self._decided = True
        out, self._buffer = self._buffer, ""
        return out

    def finish(self, tools: list[dict[str, Any]] | None) -> tuple[str, list[ToolCall], str]:
        """(content, text calls, text still to show) once the stream has ended."""
        held = self._text if self._holding or not self._decided else ""
        if not self._active:
            return self._text, [], held
        content, calls = from_text(self._text, tool_names(tools) or None)
        if calls:
            return content, calls, (content if self._holding or not self._decided else "")
        return self._text, [], held


def usage_from(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


class StreamAssembler:
    """Turns OpenAI-style streamed chunks (llama.cpp's or a remote server's) into the text to
    show as it comes and, at the end, one ``ChatResult`` with usage and tool calls."""

    def __init__(self, tools: list[dict[str, Any]] | None, model: str) -> None:
        self._tools = tools
        self._guard = TextCallGuard(tools)
        self._deltas = ToolCallDeltas()
        self.usage = Usage()
        self.finish_reason = "stop"
        self.model = model

    def feed(self, event: dict[str, Any]) -> Iterator[str]:
        """The text of ``event`` that may be shown now."""
        if event.get("usage"):
            self.usage = usage_from(event["usage"])
        self.model = str(event.get("model") or self.model)
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            self._deltas.add(delta.get("tool_calls"))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
            text = delta.get("content")
            if text:
                shown = self._guard.feed(text)
                if shown:
                    yield shown

    def close(self) -> tuple[str, ChatResult]:
        """(text still to show, the final result) once the stream has ended."""
        content, text_calls, rest = self._guard.finish(self._tools)
        _, native_calls = parse_message(None, self._deltas.native(), None)
        calls = native_calls or text_calls
        return rest, ChatResult(content=content, tool_calls=calls, usage=self.usage, model=self.model,
                                finish_reason="tool_calls" if calls else self.finish_reason)
