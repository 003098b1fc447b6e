"""Prompt-time defence: no message reaches a model with chat-template control tokens in it.

Documents are cleaned at ingestion (``knowledge/sanitize.py``), but a prompt also carries text
ingested before that, tool results (catalog descriptions), the conversation and the learner's
own message. Every backend passes its messages through ``neutral_messages`` so that none of
them can open a ``system`` turn inside the prompt.
"""

from __future__ import annotations

from typing import Any

from knowledge.sanitize import strip_control_tokens


def neutral_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with control tokens removed from every text content (copies; the
    caller's list is not changed)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            message = {**message, "content": strip_control_tokens(content)}
        elif isinstance(content, list):  # OpenAI content parts
            parts = [{**p, "text": strip_control_tokens(p["text"])}
                     if isinstance(p, dict) and isinstance(p.get("text"), str) else p
                     for p in content]
            message = {**message, "content": parts}
        out.append(message)
    return out
