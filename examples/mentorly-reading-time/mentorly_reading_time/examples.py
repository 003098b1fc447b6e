"""Utterances that should route to ``reading_time`` (the router trains on them): asking how
long a text takes to read or how many words it has, in English and Chinese."""

from __future__ import annotations

EXAMPLES_EN: list[str] = [
    "How long will it take to read this text?",
    "Estimate the reading time of this passage",
    "Count the words in this essay",
    "How many words is my paragraph?",
]

EXAMPLES_ZH: list[str] = [
    "读完这段文字需要多长时间？",
    "帮我数一下这篇作文有多少字",
    "估计一下这篇文章的阅读时间",
]

EXAMPLES: list[str] = EXAMPLES_EN + EXAMPLES_ZH
