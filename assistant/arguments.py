"""Keep only the tool arguments the learner actually gave.

When a tool's deterministic ``extractor`` finds nothing, the agent asks the small LLM for
schema-constrained JSON. A 0.5B model fills every slot the schema offers, and when the message
does not hold a value it copies one from what it was shown: the tool's docstring and the schema's
``description``/``examples`` (``labels: ["urgent", "can wait"]``, ``model: "mentorly train
text"``). Those values look valid, pass the schema, and then make the tool fail or answer a
question nobody asked.

``grounded_arguments`` is the check that runs on such JSON before the tool does. A value stays
only when it occurs in (or plainly follows from) the texts the learner wrote — the message and
recent conversation turns:

* a string is kept when its words occur, in order, in the texts (case, width, whitespace and
  punctuation ignored; Chinese, Japanese and Korean characters compared one by one, i.e. by
  substring); a short non-CJK value (``SHORT_VALUE_WORDS`` words or fewer) is also kept when
  each of its words occurs somewhere;
* a list of strings keeps its grounded items, and is dropped when fewer remain than it needs
  (the schema's ``minItems``; 2 for candidate-label lists such as ``labels``);
* a number is kept when it occurs as digits or as a number word (English "three", Chinese "三");
* a boolean equal to the schema default is kept (it changes nothing); any other boolean needs a
  cue in the texts (the parameter's own words, e.g. "multi label", or a known phrase);
* a value that occurs in the tool's description, its routing examples or any schema
  ``description``/``examples``/``title`` but not contiguously in the texts is always dropped,
  even when the relaxed word-by-word rule would have let it through;
* ``None`` is the same as leaving the argument out; names the schema does not know are ignored.

The caller gets back (kept arguments, names of dropped parameters). A dropped *required*
parameter means the learner has not said it yet: ask for it (or raise), never invent it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from assistant.tooling import Tool

__all__ = ["SHORT_VALUE_WORDS", "grounded_arguments", "missing_required"]

SHORT_VALUE_WORDS = 3
"""Non-CJK values of at most this many words may be grounded word by word ("math or physics"
grounds the label "physics math"); longer ones must occur as a run of words."""

_LABEL_LISTS = {"labels", "categories", "classes", "options", "choices", "candidates"}
"""List parameters that name alternatives to choose among: fewer than 2 is no choice at all."""

_CJK_RANGES = (
    "\u2e80-\u2fdf"  # radicals
    "\u3040-\u30ff"  # kana
    "\u3100-\u312f\u31a0-\u31bf"  # bopomofo
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # ideographs
    "\uac00-\ud7af"  # hangul syllables
)
_TOKEN = re.compile(rf"[{_CJK_RANGES}]|[^\W_{_CJK_RANGES}]+")
_CJK = re.compile(rf"[{_CJK_RANGES}]")
_SEP = "\x1f"

_EN_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "a dozen": 12, "dozen": 12,
    "a single": 1, "a pair of": 2, "a couple of": 2,
}
_EN_TENS = {v: k for k, v in _EN_NUMBERS.items() if v in range(20, 100, 10)}
_ZH_UNITS = "零一二三四五六七八九"
_ZH_MEASURE = "门个节项条本篇套份样种位次张道句段页名天周年月章课首部集题类组遍件只些小时分钟秒"
"""Chinese measure words after a numeral ("三门课", "5个"): 一 alone is too common to count
("看一下", "一起") unless a measure word, the end or punctuation follows it."""

_BOOL_CUES: dict[str, re.Pattern[str]] = {
    "multi_label": re.compile(
        r"all that apply|multiple labels|more than one|several labels|multi-?label|"
        r"可多选|多选|多个标签|多标签|不止一个", re.IGNORECASE),
}
"""Phrases that ask for a non-default boolean, by parameter name (besides the name's words)."""


# --------------------------------------------------------------------------- text helpers


def _normalise(text: str) -> str:
    """NFKC (full-width → ASCII, ，→ ,), case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _stem(token: str) -> str:
    """A crude English plural fold, applied to both sides ("courses" ~ "course")."""
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss") and token.isascii():
        return token[:-1]
    return token


def _tokens(text: str) -> list[str]:
    return [_stem(t) for t in _TOKEN.findall(_normalise(text))]


def _joined(tokens: Sequence[str]) -> str:
    return _SEP + _SEP.join(tokens) + _SEP


class _Corpus:
    """Texts prepared once for many look-ups."""

    def __init__(self, texts: Iterable[str]) -> None:
        parts = [t for t in texts if isinstance(t, str) and t]
        self.raw = _normalise("\n".join(parts))
        tokens = [tok for t in parts for tok in ([*_tokens(t), ""])]  # "" keeps turns apart
        self.joined = _joined(tokens)
        self.words = set(tokens) - {""}

    def has_run(self, tokens: Sequence[str]) -> bool:
        return bool(tokens) and _joined(tokens) in self.joined


def _reference_texts(tool: Tool) -> list[str]:
    """What the LLM may copy from: the tool's description and routing examples, and every
    schema ``description``, ``title``, ``examples`` and ``default``."""
    out = [tool.description, *tool.examples]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "title") and isinstance(value, str):
                    out.append(value)
                elif key in ("examples", "default") and value is not None:
                    out.extend(_strings(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(tool.parameters)
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


# --------------------------------------------------------------------------- grounding rules


def _string_grounded(value: str, corpus: _Corpus, reference: _Corpus) -> bool:
    tokens = _tokens(value)
    if not tokens:
        return False  # empty, blank or punctuation only: nothing the learner said
    if corpus.has_run(tokens):
        return True
    if reference.has_run(tokens):
        return False  # copied from the docstring or schema, not said by the learner
    if _CJK.search(value) or len(tokens) > SHORT_VALUE_WORDS:
        return False
    return all(t in corpus.words for t in tokens)


def _number_words(n: int) -> list[str]:
    """Regular expressions for ``n`` written as words: "three", "twenty-one", "三", "两", "十二"."""
    words = [re.escape(w) for w, v in _EN_NUMBERS.items() if v == n]
    if 21 <= n <= 99 and n % 10:
        ones = next(w for w, v in _EN_NUMBERS.items() if v == n % 10)
        words.append(rf"{_EN_TENS[n - n % 10]}[- ]?{ones}")
    if n == 0:
        words.append("零")
    elif 1 <= n <= 99:
        tens, units = divmod(n, 10)
        zh = ("" if tens == 0 else ("十" if tens == 1 else _ZH_UNITS[tens] + "十")) + (
            _ZH_UNITS[units] if units else "")
        words.append(zh)
        if n == 2:
            words.append("两")
        if tens == 1:
            words.append("一" + zh)  # 一十二
    return words


def _number_grounded(value: int | float, corpus: _Corpus) -> bool:
    """Whether ``value`` occurs in the texts as digits or as a number word."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return False
        if not value.is_integer():
            text = repr(value).rstrip("0")
            return re.search(rf"(?<![\d.]){re.escape(text)}(?!\d)", corpus.raw) is not None
        value = int(value)
    digits = str(abs(value))
    if value < 0:
        return re.search(rf"(?<![\d.])-\s?{digits}(?![\d.])", corpus.raw) is not None
    if re.search(rf"(?<![\d.]){digits}(?!\d)(?!\.\d)", corpus.raw):
        return True
    for word in _number_words(value):
        if _CJK.search(word):
            pattern = rf"(?<![{_ZH_UNITS}十百千万两第]){word}(?=[{_ZH_MEASURE}]|$|[^\w])"
        else:
            pattern = rf"\b{word}\b"
        if re.search(pattern, corpus.raw):
            return True
    return False


def _bool_cue(name: str, corpus: _Corpus) -> bool:
    cue = _BOOL_CUES.get(name)
    if cue is not None and cue.search(corpus.raw):
        return True
    words = [_stem(w) for w in re.split(r"[_\W]+", name.casefold()) if w]
    return bool(words) and corpus.has_run(words)


def _schema_default(prop: dict[str, Any]) -> Any:
    return prop.get("default", None)


def _min_items(name: str, prop: dict[str, Any]) -> int:
    found = [prop.get("minItems")] + [branch.get("minItems") for branch in prop.get("anyOf", [])
                                      if isinstance(branch, dict)]
    explicit = max((m for m in found if isinstance(m, int)), default=0)
    return max(explicit, 2 if name.casefold() in _LABEL_LISTS else 1)


def _ground_list(name: str, prop: dict[str, Any], items: list[Any], corpus: _Corpus,
                 reference: _Corpus) -> list[Any] | None:
    kept: list[Any] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, bool):
            continue
        if isinstance(item, str):
            key = _SEP.join(_tokens(item))
            if key and key not in seen and _string_grounded(item, corpus, reference):
                seen.add(key)
                kept.append(item)
        elif isinstance(item, int | float) and _number_grounded(item, corpus):
            kept.append(item)
    return kept if len(kept) >= _min_items(name, prop) else None


def _grounded_value(name: str, prop: dict[str, Any], value: Any, corpus: _Corpus,
                    reference: _Corpus) -> tuple[bool, Any]:
    """(keep?, the value to keep)."""
    if isinstance(value, bool):
        if value == _schema_default(prop):
            return True, value
        return _bool_cue(name, corpus), value
    if isinstance(value, int | float):
        default = _schema_default(prop)
        if not isinstance(default, bool) and value == default:
            return True, value  # the default: the same as not giving it
        return _number_grounded(value, corpus), value
    if isinstance(value, str):
        return _string_grounded(value, corpus, reference), value
    if isinstance(value, list):
        kept = _ground_list(name, prop, value, corpus, reference)
        return kept is not None, kept
    return False, value  # objects and anything else: not something a message spells out


def grounded_arguments(tool: Tool, arguments: dict[str, Any],
                       texts: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Split LLM-filled ``arguments`` for ``tool`` into what the learner gave and what not.

    ``texts`` are the learner's message and recent conversation turns. Returns
    ``(kept, dropped)``: ``kept`` holds the grounded arguments (lists reduced to their grounded
    items), ``dropped`` the names of schema parameters whose value was dropped, in the order
    given, plus any required parameter given as ``null``. Unknown names and ``null`` values of
    optional parameters are left out silently. See the module docstring for the rules; use
    ``missing_required`` on ``kept`` to know whether the learner must be asked for more.
    """
    if not isinstance(arguments, dict):
        return {}, []
    if isinstance(texts, str):
        texts = [texts]
    schema = tool.parameters
    properties: dict[str, Any] = schema.get("properties", {}) or {}
    required = set(schema.get("required", []) or [])
    corpus = _Corpus(texts or [])
    reference = _Corpus(_reference_texts(tool))
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in arguments.items():
        prop = properties.get(name)
        if not isinstance(name, str) or not isinstance(prop, dict):
            continue  # not a parameter of this tool
        if value is None:
            if name in required:
                dropped.append(name)
            continue
        keep, cleaned = _grounded_value(name, prop, value, corpus, reference)
        if keep:
            kept[name] = cleaned
        else:
            dropped.append(name)
    return kept, dropped


def missing_required(tool: Tool, arguments: dict[str, Any]) -> list[str]:
    """Required parameters of ``tool`` that ``arguments`` does not hold (in schema order)."""
    return [name for name in tool.parameters.get("required", []) or []
            if arguments.get(name) is None]
