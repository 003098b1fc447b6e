"""The subject of a question as terms (Latin words, Chinese bigrams), and the numbered things
(week 5, 第五周) and codes (CS 214) it names, matched against sentences."""

from __future__ import annotations

import re
import unicodedata

from assistant.grounding.numbers import EN_NUMBERS, zh_number
from knowledge.lexical import tokenize

_QUESTION_WORDS = frozenset("""
what which who whom whose when where why how much many long often soon does do did is are can
could may might must should would will shall held take place located cost costs price fee fees
time date day room get need allowed allow okay ok know find say says said tell explain
course class handbook documents document policy rule rules anything something please thanks
i me my we our you your held happen happens start starts exactly kind sort any there use
using bring allowed permitted permit go have able supposed while off just fine still
even really actually want wants like get got okay also else ever way need needs within
""".split())
_ZH_FILLER = re.compile(r"请问|请|一下|我们|我|你|吗|呢|吧|啊|呀|的|了|是|在|有|什么|哪里|哪儿|哪个|"
                        r"哪些|哪位|哪一|多少|几|怎么|如何|为什么|能不能|可不可以|可以|能|会|要|"
                        r"需要|应该|是否|是不是|有没有|课程|这门课|手册|文档|资料|规定|说|告诉|"
                        r"如果|但是|因为|所以|已经|时候|同时|一起|比较|非常|一个|这个|那个|"
                        r"教室|地点|时间|时候|邮箱|电话|费用|价格|多久|几点|哪天|日期|考场|房间|以后|以前|之后|之前|"
                        r"下来|起来|出来|能够|可能|怎样|会|"
                        r"[把被里个才还就都也又和跟与或让给对从到用过着得地么啊哦嘛啦呀很太最更该呢]")


_SLOT_UNITS = {"week": "周", "chapter": "章", "lecture": "讲", "lab": "实验", "assignment": "作业",
               "unit": "单元", "session": "次", "day": "天"}
_EN_SLOT = re.compile(r"\b(week|chapter|ch\.?|lecture|lab|assignment|unit)\s*(\d+|"
                      + "|".join(EN_NUMBERS) + r")\b", re.I)
_ZH_SLOT = re.compile(r"第\s*([\d一二两三四五六七八九十]+)\s*(周|章|讲|次实验|个作业|单元)")


def slots(text: str) -> set[tuple[str, int]]:
    """Numbered things a question or sentence names: ("week", 5) from "week 5" or "第五周"."""
    t = unicodedata.normalize("NFKC", text)
    out: set[tuple[str, int]] = set()
    for unit, num in _EN_SLOT.findall(t):
        value = int(num) if num.isdigit() else EN_NUMBERS.get(num.lower())
        unit = "chapter" if unit.lower().startswith("ch") else unit.lower()
        if value is not None:
            out.add((unit, value))
    zh_units = {v: k for k, v in _SLOT_UNITS.items()} | {"次实验": "lab", "个作业": "assignment"}
    for num, unit in _ZH_SLOT.findall(t):
        value = int(num) if num.isdigit() else zh_number(num)
        if value is not None and unit in zh_units:
            out.add((zh_units[unit], value))
    return out


def subject_terms(question: str) -> list[str]:
    """Content terms of a question: Latin words (minus question words) and Chinese bigrams
    (with question particles removed first)."""
    q = unicodedata.normalize("NFKC", question).lower()
    q = _ZH_FILLER.sub(" ", q)
    terms = [t for t in tokenize(q) if t not in _QUESTION_WORDS and not _single_cjk(t)
             and not (t.isascii() and t.isalpha() and len(t) < 3)]
    return list(dict.fromkeys(terms))


def _single_cjk(token: str) -> bool:
    return len(token) == 1 and not token.isascii()


def term_set(text: str) -> set[str]:
    """The tokens of ``text`` plus 5-letter prefixes of long Latin words ("calculators" meets
    "calculator", "exams" meets "exam")."""
    tokens = set(tokenize(unicodedata.normalize("NFKC", text).lower()))
    return tokens | {"~" + t[:5] for t in tokens if t.isascii() and len(t) >= 5}


_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2,4})\s?-?(\d{3})(?![0-9])")


def codes(text: str) -> set[str]:
    """Course and room codes ("CS 214", "ML201", "CH-110"), normalised to "cs214"."""
    return {a.lower() + b for a, b in _CODE.findall(unicodedata.normalize("NFKC", text))}


def has_term(term: str, terms: set[str]) -> bool:
    return term in terms or (term.isascii() and len(term) >= 5 and "~" + term[:5] in terms)


def coverage(terms: list[str], text: str, weights: dict[str, float] | None = None) -> float:
    """(Weighted) share of ``terms`` found in ``text``."""
    if not terms:
        return 1.0
    present = term_set(text)
    total = sum((weights or {}).get(t, 1.0) for t in terms)
    found = sum((weights or {}).get(t, 1.0) for t in terms if has_term(t, present))
    return found / total if total else 1.0
