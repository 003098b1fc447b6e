"""Language detection (Chinese or English is all the templates need) and input clean-up."""

from __future__ import annotations

import re

from assistant.errors import InvalidInput
from tools.text_classification.presets import Language

MAX_CLASSIFY_CHARS = 512
"""Characters of a text that reach the embedder. multilingual-e5 reads at most 512 tokens and
its cost grows with length (a 2,000-character Chinese text takes seconds on one thread)."""

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> Language:
    """``zh`` when Chinese characters make up at least a fifth of the letters, else ``en``."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    # A Chinese character carries about as much as an English word (~4.5 letters).
    return "zh" if cjk and cjk * 4.5 >= 0.2 * (cjk * 4.5 + latin) else "en"


def clean_text(text: str, max_chars: int = MAX_CLASSIFY_CHARS) -> tuple[str, bool]:
    """Strip, reject empty input, and cut to ``max_chars``; returns (text, truncated)."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    text = text.strip()
    if not text:
        raise InvalidInput("the text to classify is empty")
    head = text[: 4 * max_chars]  # never split() a megabyte just to throw most of it away
    collapsed = " ".join(head.split())
    truncated = len(collapsed) > max_chars or len(text) > len(head)
    return collapsed[:max_chars], truncated
