"""Does the evidence answer the question? A sentence must (1) be about the question (relevance
margin), (2) name its subject (the question's content terms, or a clear cross-lingual match),
and (3) hold the kind of thing asked for: a place for "where", an amount for "how much", a
week for "which week". Requiring all three *in the same sentence* is what rejects near-misses:
a room number that exists for office hours does not answer "where is the exam?".

Thresholds were tuned on the ``tune`` half of ``benchmarks/data/answers`` (see
``benchmarks/answers.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.grounding.evidence import Evidence
from assistant.grounding.focus import answer_type, holds
from assistant.grounding.terms import codes, coverage, slots, subject_terms

MIN_MARGIN = 0.05  # relevance margin of the supporting sentence
MIN_COVERAGE = 0.4  # share of the question's subject terms in the sentence + heading
MIN_CROSS_MARGIN = 0.09  # cross-lingual pairs: no lexical overlap, so a clearer margin
# a sentence this close in meaning names the subject in other words, given some lexical anchor
STRONG_MARGIN = 0.13
STRONG_COVERAGE = 0.1
CANDIDATES = 6  # how many of the best-scored sentences may support an answer


@dataclass
class Verdict:
    answerable: bool
    kind: str
    reason: str
    support: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"answerable": self.answerable, "kind": self.kind, "reason": self.reason}


SLOTTED = {"open", "week", "time", "location", "person", "contact"}  # "what does week 5 cover?"


def _names_slots(asked: set[tuple[str, int]], e: Evidence) -> bool:
    """The sentence names the week/chapter asked about; a schedule table row whose header was
    cut off ("11; Maps and hash tables") names it by its leading number."""
    if asked <= slots(e.context):
        return True
    lead = re.match(r"\s*(\d{1,2})\s*[;|:：]", e.text)
    return lead is not None and all(value == int(lead.group(1)) for _, value in asked)


def _names_what_is_asked(e: Evidence, named: set[str], asked: set[tuple[str, int]],
                         kind: str) -> bool:
    """Hard constraints: the course codes the question names, and the week or chapter it asks
    about, must be in the sentence's context. A sentence from another course or week does not
    answer it, however similar it reads."""
    if named and not named <= codes(e.context):
        return False
    return not (asked and kind in SLOTTED and not _names_slots(asked, e))


def _subject_ok(e: Evidence, has_terms: bool, paraphrase: bool) -> bool:
    if paraphrase and e.margin >= STRONG_MARGIN and e.coverage >= STRONG_COVERAGE:
        return True
    if not has_terms:
        return e.margin >= MIN_MARGIN
    if e.coverage >= MIN_COVERAGE:
        return True
    return paraphrase and e.cross and e.margin >= MIN_CROSS_MARGIN


def _named_in_pool(question: str, pool: list[Evidence]) -> list[str]:
    """A contact question's terms that the passages mention ("王磊" in "王磊的邮箱"): the
    sentence giving an address must name them all."""
    return [t for t in subject_terms(question) if any(coverage([t], e.context) for e in pool)]


def judge(question: str, scored: list[Evidence]) -> Verdict:
    """``scored``: the sentences of the retrieved passages, best first (``score_sentences``)."""
    kind = answer_type(question)
    if not scored:
        return Verdict(False, kind, "no passages")
    named, asked = codes(question), slots(question)
    pool = [e for e in scored if _names_what_is_asked(e, named, asked, kind)][:CANDIDATES]
    if not pool:
        return Verdict(False, kind, "no passage is about the course or week the question names")
    has_terms = bool(subject_terms(question))
    # Meaning alone may stand in for the subject's words only when no sentence names them: if
    # one does ("期末考试：另行通知"), a sentence that merely reads alike (office hours in room
    # 305) is the near-miss, not the answer.
    paraphrase = not any(e.coverage >= MIN_COVERAGE and e.margin >= MIN_MARGIN for e in pool)
    support: list[Evidence] = []
    missing_type = False
    whose = _named_in_pool(question, pool) if kind == "contact" else []
    for e in pool:
        if e.margin < MIN_MARGIN or not _subject_ok(e, has_terms, paraphrase):
            continue
        if whose and coverage(whose, e.context) < 1.0:
            continue  # someone else's email is not this person's
        if not holds(e.text, kind):
            missing_type = True
            continue
        support.append(e)
    if support:
        return Verdict(True, kind, f"{len(support)} sentence(s) name the subject and hold a "
                                   f"{kind} answer", support)
    if missing_type:
        return Verdict(False, kind, f"the passages name the subject but hold no {kind} answer")
    best = pool[0]
    return Verdict(False, kind, f"no sentence is about the question (best margin "
                               f"{best.margin:.3f}, subject coverage {best.coverage:.2f})")
