"""Elliptical follow-ups keep the thread: "And week 5?", "那第四周呢？", "那这句呢：“…”",
"Something easier than those?".

A message that leans on the turn before (a short message opening with "and / what about / 那",
ending in 呢, or asking for easier / other ones) keeps the previous turn's tool. The previous
tool is found by routing the previous user message again, so this works the same whether the
history came from the database (chat page, widget, CLI ``--conversation``) or from the client
(``/v1/chat/completions``). A knowledge question is rewritten with the previous question: a
slot such as "week 2" is replaced by the new "week 5"; otherwise the two are joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.llm.base import Message

_CUE = re.compile(r"^\s*(?:and|what about|how about|also|then|same for|and for|and in|ok(?:ay)?"
                  r"[, ]+(?:and|what about)|but)\b|^\s*(?:那|那么|还有|另外|再|换成|那如果)|"
                  r"呢\s*[？?。]?\s*[“\"「『]|呢\s*[？?。]?\s*$", re.I)
_REFINE = re.compile(r"\b(?:easier|simpler|harder|more advanced|more difficult|more basic|"
                     r"others?|another one|something else|different ones?|than (?:those|these|"
                     r"that)|instead|more like (?:that|this|those|these))\b|更简单|简单一点|"
                     r"简单点|容易一点|难一点|更难|更高级|别的|其他的|换一|还有吗|还有别的|再推荐|"
                     r"这些太", re.I)
_QUOTE = re.compile(r"“[^”]+”|\"[^\"]+\"|「[^」]+」|『[^』]+』")
_SLOTS = [
    re.compile(r"\b(week|lab|assignment|chapter|unit|lecture|module|part|day|session|project|"
               r"quiz|homework|problem set)\s*(\d+|one|two|three|four|five|six|seven|eight|nine|"
               r"ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen)\b", re.I),
    re.compile(r"第\s*([\d一二两三四五六七八九十]+)\s*(周|章|节|课|次|单元|讲|个作业)"),
]
_STRIP = re.compile(r"^\s*(?:and|what about|how about|also|then|so|ok(?:ay)?|but)\b[\s,]*|"
                    r"^\s*(?:那么|那|还有|另外)|呢\s*(?=[？?。]?\s*$)", re.I)
# the previous question's own question words would decide what the follow-up asks for
_WH = re.compile(r"\b(?:how many|how much|how long|what|which|when|where|who|whom|whose|why|"
                 r"how|is|are|does|do|did|can|could)\b|多少|哪里|哪儿|哪个|哪些|哪|几|什么时候|什么|"
                 r"怎么|谁|吗|呢|[?？]", re.I)
MAX_WORDS = 9
MAX_ZH_CHARS = 16


@dataclass
class FollowUp:
    previous: str  # the previous user message (its own follow-ups already folded in)
    message: str
    refine: bool  # "easier / others": a refinement of a recommendation


def _short(message: str) -> bool:
    body = _QUOTE.sub("", message)
    cjk = len(re.findall(r"[\u4e00-\u9fff]", body))
    words = len(re.findall(r"[A-Za-z0-9]+", body))
    return words <= MAX_WORDS and cjk <= MAX_ZH_CHARS


_BACKREF = re.compile(r"\b(?:it|its|that|this|they|them|those|these|there|the same)\b|它|这个|那个|"
                      r"这些|那些|这门|那门|这里|那里", re.I)
# "Can I use them on the final project?": a plural pronoun points back at the last answer
_PLURAL_BACKREF = re.compile(r"\b(?:them|those|these|they)\b|这些|那些|它们", re.I)
_BARE_WH = re.compile(r"^\s*(?:which|what|when|where|who|how (?:much|many|long)|in which|at what)\b"
                      r"[^.!]{0,30}[?？]?\s*$|^\s*(?:在哪|哪里|几点|什么时候|多少|谁)", re.I)


def is_elliptical(message: str) -> bool:
    if not _short(message):
        return False
    if _CUE.search(message) or _REFINE.search(message) or _PLURAL_BACKREF.search(message):
        return True
    words = len(re.findall(r"[A-Za-z0-9]+", message))
    cjk = len(re.findall(r"[\u4e00-\u9fff]", message))
    tiny = words <= 3 and cjk <= 6  # "Which room?", "在哪？": nothing to search on their own
    return (tiny and bool(_BARE_WH.search(message))) or (
        words <= 5 and cjk <= 8 and bool(_BACKREF.search(message)) and bool(_BARE_WH.search(message)))


def previous_user_messages(history: list[Message]) -> list[str]:
    return [m["content"] for m in history if m.get("role") == "user"
            and isinstance(m.get("content"), str) and m["content"].strip()]


def detect(message: str, history: list[Message]) -> FollowUp | None:
    """A follow-up of the last user message, or ``None``."""
    if not is_elliptical(message):
        return None
    earlier = previous_user_messages(history)
    if not earlier:
        return None
    previous = earlier[-1]
    # fold a chain ("week 2?" → "and week 5?" → "and week 7?") back to its full question
    for before in reversed(earlier[:-1]):
        if not is_elliptical(previous):
            break
        previous = rewrite(before, previous)
    return FollowUp(previous=previous, message=message, refine=bool(_REFINE.search(message)))


def rewrite(previous: str, message: str) -> str:
    """The follow-up as a standalone question: a slot swapped into the previous question
    ("week 2" → "week 5"), else the follow-up joined to it."""
    for slot in _SLOTS:
        new, old = slot.search(message), slot.search(previous)
        if new and old and _unit(new) == _unit(old):
            return previous[:old.start()] + new.group() + previous[old.end():]
    core = _STRIP.sub("", message).strip(" ？?。，,") or message.strip()
    context = _WH.sub(" ", previous).strip(" ？?。，,")
    context = re.sub(r"\s+", " ", context).strip()
    return f"{core} ({context})" if context else core


def with_new_payload(previous: str, message: str) -> str:
    """"那这句呢：“B”" after "这句话是什么情感：“A”": the previous request with B in place of A
    (so the tool's own extractor reads the same instruction with the new text). Without a
    quote in both, the follow-up itself."""
    new, old = _QUOTE.search(message), _QUOTE.search(previous)
    if new is None or old is None:
        return message
    return previous[:old.start()] + new.group() + previous[old.end():]


def _unit(match: re.Match[str]) -> str:
    groups = [g for g in match.groups() if g and not re.fullmatch(r"[\d一二两三四五六七八九十]+|"
                                                                 r"one|two|three|four|five|six|"
                                                                 r"seven|eight|nine|ten|eleven|"
                                                                 r"twelve|thirteen|fourteen|"
                                                                 r"fifteen|sixteen", g, re.I)]
    return groups[0].lower() if groups else ""
