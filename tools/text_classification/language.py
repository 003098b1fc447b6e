"""Input clean-up for the classifier, and the product's one ``detect_language`` (Chinese or
English is all the templates need), re-exported from ``assistant.language``."""

from __future__ import annotations

import re
import unicodedata

from assistant.errors import InvalidInput
from assistant.language import detect_language

MAX_CLASSIFY_CHARS = 512
"""Characters of a text that reach the embedder. multilingual-e5 reads at most 512 tokens and
its cost grows with length (a 2,000-character Chinese text takes seconds on one thread)."""

_UNUSABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""NUL and other control characters, and lone surrogates (no encoder accepts them: the embedder
would raise ``UnicodeEncodeError``)."""

__all__ = ["MAX_CLASSIFY_CHARS", "clean_text", "detect_language", "has_visible", "scrub", "shown"]


def scrub(text: str) -> str:
    """``text`` with control characters and lone surrogates turned into spaces (same length)."""
    return _UNUSABLE.sub(" ", text)


def has_visible(text: str) -> bool:
    """Whether ``text`` holds anything but spaces, control and format characters
    (zero-width spaces, byte-order marks, direction marks)."""
    return any(unicodedata.category(ch)[0] not in "CZ" for ch in text)


def shown(value: object, limit: int = 60) -> str:
    """``repr`` of a learner- or model-given value, cut to ``limit`` characters, for messages."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def clean_text(text: str, max_chars: int = MAX_CLASSIFY_CHARS) -> tuple[str, bool]:
    """Strip, drop unusable characters, reject empty input, and cut to ``max_chars``;
    returns (text, truncated)."""
    if not isinstance(text, str):
        raise InvalidInput("the text to classify must be a string", zh="要分类的内容必须是文字")
    text = text.strip()
    head = scrub(text[: 4 * max_chars])  # never split() a megabyte just to throw most of it away
    collapsed = " ".join(head.split())
    if not has_visible(collapsed):
        raise InvalidInput("the text to classify is empty: give the sentence to classify",
                           zh="要分类的文字是空的：请给出要分类的句子")
    truncated = len(collapsed) > max_chars or len(text) > len(head)
    return collapsed[:max_chars], truncated
