"""Deterministic arguments for ``recommend_resources`` from the learner's message.

``k`` from "3 courses" / "three resources" / "三门课" / "推荐5个"; ``level`` from level words;
``subject`` from subject words (a catalog subject) or a known topic ("machine learning",
"微积分"), which the recommender matches by content. Always returns at least ``{"k": 5}``, so
the agent never needs the LLM to call this tool.
"""

from __future__ import annotations

import re
from typing import Any

from assistant import ToolContext

DEFAULT_K = 5
MAX_K = 20
_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": 3, "a single": 1}
_ZH_DIGITS = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10, "几": 3}
_EN_UNIT = (r"(?:[\w-]+\s+){0,3}?"
            r"(?:courses?|resources?|lessons?|classes|modules?|items?|things|recommendations?|"
            r"suggestions?|options?|topics?|materials?|tutorials?|books?|units?|ideas?)")
_EN_K = re.compile(r"\b(\d{1,2}|" + "|".join(sorted(_EN_NUMBERS, key=len, reverse=True)) +
                   r")\s+" + _EN_UNIT + r"\b", re.IGNORECASE)
_ZH_K = re.compile(r"([0-9]{1,2}|[一两二三四五六七八九十几])\s*(?:门|个|节|项|条|本|篇|套|份|样|种)")
_TOP_K = re.compile(r"\btop\s+(\d{1,2})\b", re.IGNORECASE)

_LEVELS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(beginners?|introductory|intro|entry[- ]level|basics?|easy|easier|"
                r"from scratch|new to)\b|入门|初级|零基础|初学|简单", re.I), "beginner"),
    (re.compile(r"\b(intermediate|mid[- ]level|next level)\b|中级|进阶", re.I), "intermediate"),
    (re.compile(r"\b(advanced|harder|challenging|expert)\b|高级|高阶|难一点|有挑战", re.I), "advanced"),
]

_SUBJECTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(maths?|mathematics)\b|数学", re.I), "mathematics"),
    (re.compile(r"\bphysics\b|物理", re.I), "physics"),
    (re.compile(r"\bchemistry\b|化学", re.I), "chemistry"),
    (re.compile(r"\bbiology\b|生物", re.I), "biology"),
    (re.compile(r"\bdata science\b|数据科学|数据分析", re.I), "data science"),
    (re.compile(r"\b(computer science|programming|coding)\b|编程|计算机|程序设计", re.I),
     "computer science"),
    (re.compile(r"\b(economics|economy)\b|经济", re.I), "economics"),
    (re.compile(r"\bhistory\b|历史", re.I), "history"),
    (re.compile(r"\b(learn|study|improve|practi[cs]e|my)\s+english\b|\benglish\s+(course|class|"
                r"lesson|grammar|writing|reading|listening|speaking|vocabulary|skills?)\b|英语|英文",
                re.I), "english"),
    (re.compile(r"\b(learn|study|improve|practi[cs]e|my)\s+(chinese|mandarin)\b|\b(chinese|mandarin)"
                r"\s+(course|class|lesson|characters|grammar|writing|reading|poetry|literature)\b|"
                r"语文|汉语|中文课|古诗|文言文", re.I), "chinese"),
]
_TOPICS = re.compile(
    r"\b(machine learning|deep learning|artificial intelligence|neural networks?|python|"
    r"javascript|sql|databases?|web development|calculus|algebra|geometry|statistics|"
    r"probability|linear algebra|trigonometry|genetics|evolution|ecology|quantum|relativity|"
    r"electricity|optics|organic chemistry|poetry|grammar|writing|pronunciation|ielts|toefl|"
    r"finance|investing|entrepreneurship|recommender systems?|nlp)\b|"
    r"机器学习|深度学习|人工智能|神经网络|微积分|代数|几何|统计|概率|线性代数|三角函数|遗传|进化|"
    r"生态|量子|相对论|电路|光学|有机化学|诗词|唐诗|写作|语法|发音|雅思|托福|理财|创业|推荐系统",
    re.IGNORECASE)


def extract_k(message: str) -> int:
    for pattern in (_EN_K, _TOP_K):
        match = pattern.search(message)
        if match:
            token = match.group(1).lower()
            value = int(token) if token.isdigit() else _EN_NUMBERS.get(token, DEFAULT_K)
            return max(1, min(MAX_K, value))
    match = _ZH_K.search(message)
    if match:
        token = match.group(1)
        value = int(token) if token.isdigit() else _ZH_DIGITS.get(token, DEFAULT_K)
        return max(1, min(MAX_K, value))
    return DEFAULT_K


def extract_arguments(message: str, context: ToolContext | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"k": extract_k(message)}
    topic = _TOPICS.search(message)
    if topic:
        args["subject"] = topic.group(0).lower()
    else:
        for pattern, subject in _SUBJECTS:
            if pattern.search(message):
                args["subject"] = subject
                break
    for pattern, level in _LEVELS:
        if pattern.search(message):
            args["level"] = level
            break
    return args
