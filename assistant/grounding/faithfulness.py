"""Check a generated answer against the evidence it cites, and add ``[n]`` markers.

Numbers (digits, English words, Chinese numerals), room and course codes, capitalised names and
yes/no polarity in the answer must all be found in the evidence. Any failure means the answer
is not shown; the quoted evidence stands instead. The check is strict on purpose: a false alarm
costs a paraphrase, a miss costs a learner a wrong rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.grounding.evidence import Evidence
from assistant.grounding.numbers import numbers
from assistant.grounding.polarity import negated, restricted, stance
from assistant.grounding.terms import has_term, subject_terms, term_set
from assistant.language import detect_language
from knowledge.lexical import tokenize

_MARKER = re.compile(r"\s*\[\d+\]")
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
_CODE = re.compile(r"\b[A-Z]{1,4}\s?-?\d{2,4}[A-Z]?\b")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)+)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
MIN_WORD_SUPPORT = 0.6  # share of an English answer's content words found in evidence/question
_GENERIC = frozenset("""
yes no answer evidence according documents document course handbook says said short learner
allowed allow required need needs must may can also only use used using get take one
""".split())


@dataclass
class Check:
    ok: bool
    problems: list[str] = field(default_factory=list)


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


MIN_CHARS = {"en": 12, "zh": 6}


def check_answer(answer: str, evidence: Sequence[Evidence], question: str = "",
                 kind: str = "open") -> Check:
    """Whether every number, code, name and polarity in ``answer`` is backed by ``evidence``.
    ``kind`` is the question's answer type (``grounding.focus.answer_type``)."""
    text = _MARKER.sub("", _norm(answer)).strip()
    source = _norm(" ".join(e.context for e in evidence))
    problems: list[str] = []
    yes_no = kind == "yesno"
    if len(text) < MIN_CHARS["zh" if _CJK_CHAR.search(text) else "en"]:
        return Check(False, ["too short to be an answer"])
    if not yes_no and stance(text) is not None and len(text) < 40:
        return Check(False, ["a yes/no reply to a question that is not yes/no"])
    if not _shares_content(text, source):
        return Check(False, ["the answer shares no content with the evidence"])
    if question and not yes_no and _echo(text, source, question):
        return Check(False, ["the answer only repeats the question"])
    found = numbers(source)
    values = {round(n.value, 4) for n in found}
    counted = {(round(n.value, 4), n.unit) for n in found if n.unit}
    units = {n.unit for n in found if n.unit}
    for n in numbers(text):
        if round(n.value, 4) not in values:
            problems.append(f"number {n.text!r} is not in the evidence")
        elif n.unit in units and (round(n.value, 4), n.unit) not in counted:
            # "交两次" where the evidence says "共 6 次": the number exists, but not for that
            problems.append(f"{n.text!r} {n.unit} is not what the evidence counts")
    lowered = source.lower().replace(" ", "")
    for code in _CODE.findall(text):
        if code.lower().replace(" ", "").replace("-", "") not in lowered.replace("-", ""):
            problems.append(f"code {code!r} is not in the evidence")
    for name in _NAME.findall(text):
        if name.lower() not in source.lower() and name.lower() not in question.lower():
            problems.append(f"name {name!r} is not in the evidence")
    problems += _polarity(text, evidence, yes_no)
    problems += _borrowed_from_question(text, source, question)
    problems += _unsupported_words(text, source, question)
    return Check(not problems, problems)


def _shares_content(text: str, source: str) -> bool:
    """At least one content term (or, across scripts, one number) in common."""
    terms = {t for t in tokenize(text) if len(t) > 1}
    if terms & set(tokenize(source)):
        return True
    return any(n.value in {m.value for m in numbers(source)} for n in numbers(text))


def _polarity(text: str, evidence: Sequence[Evidence], yes_no: bool) -> list[str]:
    evidence_negated = any(negated(e.text) for e in evidence)
    evidence_restricted = any(restricted(e.text) for e in evidence)
    said = stance(text)
    if said == "yes" and evidence_restricted:
        return ["answers yes, but the evidence carries a negation or restriction"]
    if said == "no" and not evidence_negated:
        return ["answers no, but the evidence has no negation"]
    if negated(text) and not evidence_negated:
        return ["the answer negates what the evidence states plainly"]
    if yes_no and evidence_restricted and not restricted(text):
        return ["the evidence restricts or negates, the answer does not"]
    return []


def _borrowed_from_question(text: str, source: str, question: str) -> list[str]:
    """Subject terms of the question that the answer repeats but the evidence never mentions:
    "The CS 214 lectures are *recorded*", "王磊的邮箱是…" from a sentence about someone else,
    "宿舍的 Wi-Fi 密码是 5555" from an English sentence about a phone number. A Chinese term
    cannot be verified against English evidence (or the reverse), so it fails too."""
    if not question:
        return []
    said, known = term_set(text), term_set(source)
    evidence_cjk = len(_CJK_CHAR.findall(source)) >= 4
    evidence_en = detect_language(source) == "en"
    # a term in a script the evidence does not use cannot be verified: it counts as missing
    missing = [t for t in subject_terms(question) if has_term(t, said) and (
        not has_term(t, known) or not (evidence_en if t.isascii() else evidence_cjk))]
    return [f"the answer says {', '.join(missing)!s}, the evidence does not"] if missing else []


def _echo(text: str, source: str, question: str) -> bool:
    """The answer only repeats the question: no content term of it comes from the evidence
    that the question did not already hold."""
    answer = {t for t in tokenize(text) if len(t) > 1 or t.isdigit()}
    new = answer - set(tokenize(question))
    return not (new & set(tokenize(source)))


def _unsupported_words(text: str, source: str, question: str) -> list[str]:
    """An English answer whose content words are mostly not in the evidence is invented
    (skipped when the answer and evidence are in different scripts)."""
    words = [t for t in tokenize(text) if t.isascii() and t.isalpha() and t not in _GENERIC]
    if len(words) < 3 or detect_language(source) != "en":
        return []
    known = set(tokenize(source)) | set(tokenize(question))
    stems = {t[:4] for t in known if len(t) >= 4}
    found = sum(1 for w in words if w in known or (len(w) >= 4 and w[:4] in stems))
    if found / len(words) < MIN_WORD_SUPPORT:
        return [f"only {found}/{len(words)} content words are in the evidence"]
    return []


def cite(text: str, evidence: Sequence[Evidence]) -> str:
    """Append ``[n]`` to each sentence of ``text`` that has none: the source whose evidence
    shares the most terms with it (the first evidence when nothing is shared)."""
    if not evidence:
        return text
    out: list[str] = []
    for sentence in (s for s in _SENTENCE_END.split(text.strip()) if s.strip()):
        if _MARKER.search(sentence):
            out.append(sentence)
            continue
        terms = set(tokenize(sentence))
        best = max(evidence, key=lambda e: len(terms & set(tokenize(e.text))))
        body = sentence.rstrip()
        end = body[-1] if body and body[-1] in ".!?。！？" else ""
        body = body[:-1] if end else body
        out.append(f"{body} [{best.n}]{end}")
    joiner = "" if all(_CJK_CHAR.search(s) for s in out) else " "
    return joiner.join(out)
