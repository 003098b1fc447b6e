"""Numbers as learners and documents write them: digits, English words, Chinese numerals."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
             "七": 7, "八": 8, "九": 9}
EN_NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
              "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
              "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
              "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
              "fifty": 50, "sixty": 60, "hundred": 100}


def zh_number(text: str) -> int | None:
    total, section, current = 0, 0, 0
    for ch in text:
        if ch in ZH_DIGITS:
            current = ZH_DIGITS[ch]
        elif ch == "十":
            section += (current or 1) * 10
            current = 0
        elif ch == "百":
            section += (current or 1) * 100
            current = 0
        elif ch == "千":
            section += (current or 1) * 1000
            current = 0
        elif ch == "万":
            total += (section + current) * 10000
            section, current = 0, 0
        else:
            return None
    return total + section + current


_NUM_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[零〇一二两三四五六七八九十百千万]+|\b(?:"
                        + "|".join(EN_NUMBERS) + r")\b", re.I)


@dataclass(frozen=True)
class Number:
    text: str
    value: float
    unit: str = ""  # what it counts, when it says: "次" in 6 次, "days" in 3 days, "%"


def numbers(text: str) -> list[Number]:
    """Numbers written as digits, English words or Chinese numerals, with their value."""
    out: list[Number] = []
    text_nfkc = unicodedata.normalize("NFKC", text)
    for m in _NUM_TOKEN.finditer(text_nfkc):
        tok = m.group()
        if tok[0].isdigit():
            try:
                value = float(tok.replace(",", ""))
            except ValueError:
                continue
        elif tok.lower() in EN_NUMBERS:
            value = float(EN_NUMBERS[tok.lower()])
        else:
            zh = zh_number(tok)
            if zh is None:
                continue
            value = float(zh)
        out.append(Number(tok, value, _unit(text_nfkc, m.end())))
    return out


_UNIT = re.compile(r"\s*(%|[\u4e00-\u9fff]|[A-Za-z]+)")
_NOT_UNITS = frozenset("of and or to the a an in on at for by is are was".split())


def _unit(text: str, end: int) -> str:
    m = _UNIT.match(text, end)
    if m is None:
        return ""
    unit = m.group(1).lower()
    if unit in _NOT_UNITS or unit in EN_NUMBERS or unit in ZH_DIGITS or unit in "十百千万":
        return ""
    return unit[:-1] if len(unit) > 3 and unit.endswith("s") else unit
