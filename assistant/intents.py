"""Two cues the router's classifier cannot be trusted with alone, as plain patterns.

* A **general request** asks for the assistant's own words: write, explain, translate, plan,
  brainstorm, rewrite, tell a story ("Write a short poem about learning", "帮我制定这周的学习计划",
  "把这句话改得礼貌一点：“…”"). It gets no tool and no document search, even when a quoted text or
  a study word pulls the classifier towards one.
* A **course item** is a course code or a numbered week/chapter ("ML201第一周学什么？",
  "What does week 5 of CS 214 cover?"): a question about what the documents schedule, not a
  request for personal recommendations.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.grounding.terms import codes, slots

_POLITE = r"(?:(?:please|pls|hey|hi|ok|okay)[,!]?\s+)*(?:(?:can|could|would|will) you\s+(?:please\s+)?)?"
_EN_GENERAL = re.compile(
    r"^\s*" + _POLITE + r"(?:write|compose|draft|explain|describe|translate|brainstorm|"
    r"summari[sz]e|rewrite|rephrase|paraphrase|proofread|polish|improve|simplify|outline|"
    r"make (?:this|it|my)\b|tell me (?:a|an|about|how|why)\b|give me (?:tips|advice|ideas|an? "
    r"(?:example|analogy|tip|idea|quote))|help me (?:plan|write|understand|study|prepare|"
    r"organi[sz]e|improve|practi[cs]e|brainstorm|learn|memori[sz]e|focus|revise)|plan my|"
    r"create an? (?:study )?(?:plan|schedule|outline|quiz)|suggest (?:some )?(?:ways|tips|ideas)|"
    r"list (?:some|the|a few)|compare|quiz me|teach me|show me how|what(?:'s| is) the "
    r"difference between|how (?:do|can|should) i (?:study|learn|focus|stay|prepare|memori[sz]e|"
    r"manage|avoid|deal))\b", re.I)
_ZH_GENERAL = re.compile(
    r"^\s*(?:请你?|麻烦你?|能不能|可不可以|可以|你能|你可以|帮我|给我|替我|为我)*\s*(?:帮我|给我|替我|为我)?"
    r"(?:把.{0,30}?)?(?:写|解释|翻译|总结|概括|润色|改写|改得|改成|修改|头脑风暴|列出|列举|讲个|讲一个|"
    r"讲讲|讲一下|制定|规划|安排|计划|介绍一下|举个例子|举例|比较|出几道|出一套|想几个|想一些|编一个|"
    r"编个|作一首|说说|谈谈|分析一下怎么|教我)")


def is_general_request(message: str) -> bool:
    """Whether the message asks for the assistant's own words (see the module docstring)."""
    text = unicodedata.normalize("NFKC", message or "")
    return bool(_EN_GENERAL.search(text) or _ZH_GENERAL.search(text))


def names_course_item(message: str) -> bool:
    """A course code or a numbered week/chapter/lecture in the message."""
    return bool(codes(message) or slots(message))
