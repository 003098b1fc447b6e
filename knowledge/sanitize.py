"""Chat-template control tokens removed from document text.

A document is data. If it carries the tokens that chat models use to mark turns
(``<|im_start|>system``, ``[INST]``, ``<start_of_turn>``, ``<|eot_id|>`` …), a server that
tokenizes the prompt with special tokens enabled (llama.cpp does) turns them into real turn
boundaries, and the document speaks as the system. They are removed at ingestion (here) and
again at prompt time (``assistant/llm/sanitize.py``, for text ingested before this existed and
for everything else that reaches a prompt).
"""

from __future__ import annotations

import re

CONTROL_TOKEN = re.compile(
    r"<\|[A-Za-z0-9_./:-]{1,40}\|>"                    # ChatML, Llama 3, Phi, GLM: <|im_start|>
    r"|<｜[^｜<>\n]{1,40}｜>"                            # DeepSeek: <｜begin▁of▁sentence｜>
    r"|\[/?INST\]|<</?SYS>>"                           # Llama 2, Mistral
    r"|</?(?:s|start_of_turn|end_of_turn|bos|eos|pad|unk|think|tool_call|tool_response"
    r"|function_call|im_start|im_end)>"                # Gemma, Qwen tools, sentence markers
    r"|\[(?:gMASK|sMASK|AVAILABLE_TOOLS|/AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS"
    r"|/TOOL_RESULTS|SYSTEM_PROMPT|/SYSTEM_PROMPT)\]",  # GLM, Mistral v3+
    re.IGNORECASE,
)


_CLOSERS = re.compile(
    r"<\|(?:im_end|eot_id|end|endoftext|eom_id)\|>|<end_of_turn>|\[/INST\]|<</SYS>>|</s>|<eos>"
    r"|<｜end▁of▁sentence｜>|</(?:tool_call|tool_response|function_call|think)>", re.IGNORECASE)
_TURN_TEXT = re.compile(r"\s*(?:(?!\n[ \t]*\n).)*?(?=" + CONTROL_TOKEN.pattern + r")|[^\n]*",
                        re.IGNORECASE | re.DOTALL)
"""What a turn-opening token governs: the text up to the next control token (within the
paragraph), or else the rest of its line."""


def strip_control_tokens(text: str) -> str:
    """``text`` without chat-template control tokens, and without the text that a token which
    opens a turn (``<|im_start|>system``, ``<start_of_turn>model``, ``<<SYS>>``) governs: a
    scripted system, user or assistant turn inside a document is never course content. Each
    removal leaves one space, so words on either side stay apart; text without any token is
    returned unchanged."""
    if "<" not in text and "[" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        match = CONTROL_TOKEN.search(text, pos)
        if match is None:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:match.start()] + " ")
        pos = match.end()
        if not _CLOSERS.fullmatch(match.group()):
            governed = _TURN_TEXT.match(text, pos)
            pos = governed.end() if governed else pos


def has_control_tokens(text: str) -> bool:
    return CONTROL_TOKEN.search(text) is not None
