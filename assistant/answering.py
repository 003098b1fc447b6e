"""The grounded answer of a knowledge turn: quote, cite, or say you don't know.

1. The sentences of the retrieved passages are scored against the question
   (``grounding.evidence``) and judged (``grounding.answerability``).
2. Not answerable: a plain "the documents don't say", plus the titles of the closest passages
   as related reading (titles only: a quoted near-miss would read as an answer).
3. Answerable: the selected sentences are streamed at once as quotes with their ``[n]`` (the
   learner's first words arrive before any LLM token). For a yes/no question with evidence in
   the learner's language, the LLM then writes a one-sentence summary from those sentences only.
   It is shown only if every number (with what it counts), code, name and yes/no polarity in
   it is found in the evidence (``grounding.faithfulness``); its ``[n]`` markers are added
   here, not by the model. Other questions get no summary by default (``summary = "auto"``):
   measured on the dev set, the 0.5B model's paraphrase of a plain fact added nothing the quote
   did not say and sometimes a wrong relation no lexical check can see ("X teaches the
   course" from "Teaching assistant: X").

``Answer.mode`` is ``generated`` (quote + checked summary), ``quoted`` (the summary failed the
check or was not asked for) or ``abstained``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant import prompts
from assistant.errors import MentorlyError
from assistant.events import Event, TextDelta
from assistant.grounding import Evidence, check_answer, cite, judge, select_evidence
from assistant.grounding.evidence import score_sentences
from assistant.language import detect_language
from assistant.llm.base import ChatBackend, Usage
from assistant.messages import say
from assistant.tooling import Source
from knowledge.embedders import Embedder

log = logging.getLogger(__name__)
SUMMARY_TOKENS = 80
MAX_RELATED = 3


@dataclass
class Answer:
    text: str
    mode: str
    model: str = ""
    verdict: dict[str, Any] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def grounding(self) -> dict[str, Any]:
        return {"mode": self.mode, **self.verdict, "evidence": self.evidence,
                "check": self.problems}


def quote_block(evidence: Sequence[Evidence], language: str) -> str:
    lines = [f"> {e.text} [{e.n}]" for e in evidence]
    return say("quote_intro", language) + "\n" + "\n".join(lines)


def abstention(sources: Sequence[Source], language: str) -> str:
    text = say("not_in_documents", language)
    titles = list(dict.fromkeys(s.title for s in sources if s.title))[:MAX_RELATED]
    if titles:
        numbered = [f"[{next(i for i, s in enumerate(sources, 1) if s.title == t)}] {t}"
                    for t in titles]
        text += "\n\n" + say("related_reading", language) + "\n" + "\n".join(
            f"- {line}" for line in numbered)
    return text


def wants_summary(policy: str, kind: str, language: str, evidence: Sequence[Evidence]) -> bool:
    """``always`` / ``never``; ``auto``: a yes/no question whose evidence is in the learner's
    language (across languages the check cannot verify what the summary repeats, so it would
    only cost time)."""
    if policy in ("always", "never"):
        return policy == "always"
    return kind == "yesno" and all(detect_language(e.text) == language for e in evidence)


def grounded_answer(question: str, language: str, sources: Sequence[Source], *,
                    embedder: Embedder, backend: ChatBackend, usage: Usage,
                    summary: str = "auto", temperature: float = 0.0) -> Generator[Event, None, Answer]:
    """Yields ``TextDelta`` events; returns an :class:`Answer` (via ``yield from``)."""
    scored = score_sentences(question, sources, embedder)
    verdict = judge(question, scored)
    if not verdict.answerable:
        text = abstention(sources, language)
        yield TextDelta(text)
        return Answer(text, "abstained", verdict=verdict.to_dict())
    evidence = select_evidence(question, sources, embedder, scored=verdict.support,
                               neighbours=scored)
    text = quote_block(evidence, language)
    yield TextDelta(text)
    answer = Answer(text, "quoted", verdict=verdict.to_dict(),
                    evidence=[{"n": e.n, "text": e.text} for e in evidence])
    if not wants_summary(summary, verdict.kind, language, evidence):
        return answer
    try:
        result = backend.chat(prompts.summary_messages(language, question, evidence,
                                                       verdict.kind == "yesno"),
                              max_tokens=SUMMARY_TOKENS, temperature=temperature)
    except MentorlyError as exc:  # the quotes already answer; a summary is a bonus
        log.warning("summary generation failed: %s", exc)
        answer.problems = [f"summary failed: {exc.message}"]
        return answer
    usage.prompt_tokens += result.usage.prompt_tokens
    usage.completion_tokens += result.usage.completion_tokens
    answer.model = result.model or str(getattr(backend, "model", ""))
    summary = prompts.clean_summary(result.content)
    if not summary or prompts.says_not_found(summary):
        answer.problems = ["the model found no answer in the evidence"]
        return answer
    check = check_answer(summary, evidence, question, kind=verdict.kind)
    if not check.ok:
        log.info("summary rejected (%s): %r", "; ".join(check.problems), summary)
        answer.problems = check.problems
        return answer
    block = "\n\n" + say("summary_intro", language) + cite(summary, evidence)
    yield TextDelta(block)
    answer.text += block
    answer.mode = "generated"
    return answer

