"""Answers built from evidence: select the sentences that answer a question, decide whether
they do, check a generated answer against them, and compose what the learner reads.

The principle is *quote, cite, or say you don't know*: a 0.5B model cannot be made faithful by
prompting, so every fact a learner reads either is a quoted sentence of a cited passage or has
passed :func:`check_answer` against the sentences it cites.
"""

from assistant.grounding.answerability import Verdict, judge
from assistant.grounding.evidence import Evidence, select_evidence
from assistant.grounding.faithfulness import Check, check_answer, cite
from assistant.grounding.sentences import split_sentences

__all__ = ["Check", "Evidence", "Verdict", "check_answer", "cite", "judge", "select_evidence",
           "split_sentences"]
