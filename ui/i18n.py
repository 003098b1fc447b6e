"""The chat page's strings: the ``ui`` section of the product's one catalogue
(``assistant.messages``), and the page's language picker.

``t(key, lang, **values)`` formats one; a missing key is a programming error (``KeyError``),
caught by the tests that walk ``STRINGS``.
"""

from __future__ import annotations

from assistant.language import DEFAULT_LANGUAGE, LANGUAGES, Language, normalize_language
from assistant.messages import UI, text

Lang = Language
DEFAULT_LANG: Lang = DEFAULT_LANGUAGE
STRINGS = UI
normalize_lang = normalize_language

# Shown in the language picker; each name is written in its own language.
LANGUAGE_CHOICES: list[tuple[str, str]] = [("English", "en"), ("中文", "zh")]

EXAMPLE_KEYS: tuple[str, ...] = ("example_policy", "example_next", "example_sentiment")

__all__ = ["DEFAULT_LANG", "EXAMPLE_KEYS", "LANGUAGES", "LANGUAGE_CHOICES", "STRINGS", "Lang",
           "examples", "lang_from_accept_language", "normalize_lang", "t"]


def lang_from_accept_language(header: str | None) -> Lang:
    """The first supported language in an HTTP ``Accept-Language`` header (by q-value)."""
    if not header:
        return DEFAULT_LANG
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANG


def t(key: str, lang: str, **values: object) -> str:
    return text("ui", key, lang, **values)


def examples(lang: str) -> list[str]:
    return [t(k, lang) for k in EXAMPLE_KEYS]
