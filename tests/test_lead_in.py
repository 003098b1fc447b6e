"""The sentence before a tool's display block: whole sentences only, never the start of a list."""

from __future__ import annotations

import pytest

from assistant.lead_in import LeadIn


def lead_in(text: str, chunk: int, cut_short: bool = True) -> str:
    lead, out = LeadIn(), ""
    for start in range(0, len(text), chunk):
        out += lead.feed(text[start:start + chunk])
    return out + lead.finish(cut_short)


@pytest.mark.parametrize("text, expected", [
    ("Based on what you did, study these next:\n\n1. Basic Chinese Characters (chinese, begi",
     "Based on what you did, study these next."),
    ("Here are five picks for you. They build on what you compl", "Here are five picks for you."),
    ("Great question! Here is what I suggest.", "Great question!"),
    ("Try these, e.g. the maths course. Then more.", "Try these, e.g. the maths course."),
    ("1. Basic Chinese\n2. Numbers", ""),
    ("\n\nHere you go:\n- A", "Here you go."),
    ("Start with 2. Algebra (mathematics, beginn", "Start with 2. Algebra (mathematics, beginn…"),
    ("你下一步可以学基础汉字。另外也可以学英语。再来一", "你下一步可以学基础汉字。"),
    ("为你推荐以下课程：\n1. 基础汉字", "为你推荐以下课程。"),
])
@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_lead_in_keeps_whole_sentences(text: str, expected: str, chunk: int) -> None:
    assert lead_in(text, chunk) == expected


def test_a_reply_that_simply_ends_is_kept_whole() -> None:
    assert lead_in("Sure", 2, cut_short=False) == "Sure"
    assert lead_in("Sure", 2, cut_short=True) == "Sure…"


def test_two_sentences_when_asked() -> None:
    lead = LeadIn(max_sentences=2)
    shown = lead.feed("推荐两门历史课。古代文明很受欢迎。中国简史也不错。")
    assert shown == "推荐两门历史课。古代文明很受欢迎。" and lead.done
