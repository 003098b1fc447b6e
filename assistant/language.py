"""The language of a message: English or Chinese, decided one way for the whole product.

The agent (which language to answer in), the grounding checks and the text classifier
(which label templates to use) all call ``detect_language``, so they never disagree about the
same message. What the product says in each language is in ``assistant.messages``.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
DEFAULT_LANGUAGE: Language = "en"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str, default: Language = DEFAULT_LANGUAGE) -> Language:
    """``zh`` when Chinese characters make up at least a fifth of the letters, else ``en``;
    ``default`` when the text has neither (digits, punctuation, emoji)."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0 and latin == 0:
        return default
    # A Chinese character carries about as much as an English word (~4.5 letters).
    return "zh" if cjk and cjk * 4.5 >= 0.2 * (cjk * 4.5 + latin) else "en"


def normalize_language(value: object) -> Language:
    """Map ``"zh-CN"``, ``"中文"``, ``None``... onto a supported language."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v.startswith("zh") or v == "中文":
            return "zh"
        if v.startswith("en") or v == "english":
            return "en"
    return DEFAULT_LANGUAGE
