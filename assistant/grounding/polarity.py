"""Yes/no polarity: negation and restriction cues, and the stance an answer opens with."""

from __future__ import annotations

import re
import unicodedata

_NEGATION = re.compile(r"\b(?:not|no|never|cannot|can't|cant|mustn't|won't|isn't|aren't|don't|"
                       r"doesn't|didn't|shouldn't|prohibited|forbidden|banned|none|nor|neither)\b|"
                       r"n't\b|不|没|禁止|严禁|不得|无|非|勿|未", re.I)
_RESTRICTION = re.compile(r"\b(?:only|except|unless|but|provided|as long as|must|at most|"
                          r"at least|up to|maximum|minimum)\b|仅|只|除非|但|必须|最多|至少|须", re.I)


def negated(text: str) -> bool:
    """Whether ``text`` carries a negation (not, cannot, no, 不得, 禁止…)."""
    return bool(_NEGATION.search(unicodedata.normalize("NFKC", text)))


def restricted(text: str) -> bool:
    """Whether ``text`` carries a negation or a restriction (only, unless, must, 仅, 必须…): a
    plain "yes" to it would drop a condition."""
    t = unicodedata.normalize("NFKC", text)
    return bool(_NEGATION.search(t) or _RESTRICTION.search(t))


_YES_START = re.compile(r"^\s*(?:yes|yeah|yep|sure|of course|certainly|absolutely|correct|"
                        r"that's right|是的|是|可以|能|对|没错|当然|允许)(?:\b|[，,。.!！])", re.I)
_NO_START = re.compile(r"^\s*(?:no|nope|not|never|不|不行|不可以|不能|不允许|没有|否)"
                       r"(?:\b|[，,。.!！])", re.I)


def stance(text: str) -> str | None:
    """``yes`` / ``no`` when an answer opens with one, else ``None``."""
    t = unicodedata.normalize("NFKC", text)
    if _NO_START.search(t):
        return "no"
    if _YES_START.search(t):
        return "yes"
    return None
