"""Sentence splitting for English and Chinese course documents (Markdown-ish text).

Hard-wrapped lines are joined back into paragraphs first; a bullet, a table row, a heading or a
blank line starts a new block. Inside a block English splits after ``. ! ?`` before a capital,
digit or quote (not after "Dr." or an initial), Chinese after ``。！？；``. Headings are left out:
they are context, carried separately.
"""

from __future__ import annotations

import re

_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)、]|[（(]?[一二三四五六七八九十]+[、.)）])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_ABBREV = (r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bProf\.)(?<!\bSt\.)"
           r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\bNo\.)(?<!\b[A-Z]\.)(?<!\bCh\.)"
           r"(?<!\bSec\.)(?<!\bFig\.)(?<!\bVol\.)(?<!\bpp\.)(?<!\bp\.)(?<!\bRm\.)"
           r"(?<!\bTel\.)(?<!\bext\.)(?<!\bDept\.)(?<!\bapprox\.)")
_EN_SPLIT = re.compile(r"(?<=[.!?])" + _ABBREV + r"[\"”’)]?\s+(?=[A-Z0-9\"“(])")
_ZH_SPLIT = re.compile(r"(?<=[。！？!?])")


def _is_cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _is_rule(cells: list[str]) -> bool:
    return all(set(c) <= set("-: ") for c in cells)


def blocks(text: str) -> list[str]:
    """Paragraphs and list items with their wrapped lines joined."""
    out: list[str] = []
    open_block = bullet_block = False
    header: list[str] = []  # a table's header cells: each row reads "Week 13; Topic Graphs"
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or _HEADING.match(raw):
            open_block = False
            header = []
            continue
        if line.startswith("|") and line.endswith("|"):
            cells = _cells(line)
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if not header and following.startswith("|") and _is_rule(_cells(following)):
                header = cells
            elif not _is_rule(cells):
                named = [f"{h} {c}" if h and len(header) == len(cells) else c
                         for h, c in zip(header or [""] * len(cells), cells, strict=False)]
                out.append("; ".join(c for c in named if c))
            open_block = False
            continue
        if _BULLET.match(raw):
            out.append(_BULLET.sub("", raw).strip())
            open_block = bullet_block = True
            continue
        continues = raw[:1].isspace() or line[0].islower() or line[0] in "(（,，"
        if open_block and out and (continues or not bullet_block):
            prev = out[-1]
            sep = "" if prev and (_is_cjk(prev[-1]) or _is_cjk(line[0])) else " "
            out[-1] = prev + sep + line
        else:
            out.append(line)
            open_block, bullet_block = True, False
    return [b.replace("**", "").replace("__", "").strip() for b in out if b.strip()]


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in reading order."""
    out: list[str] = []
    for block in blocks(text):
        for piece in _EN_SPLIT.split(block):
            out.extend(p.strip() for p in _ZH_SPLIT.split(piece) if p.strip())
    return out
