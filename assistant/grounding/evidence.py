"""Evidence selection: the sentences of the retrieved passages that answer the question.

Each sentence is scored by its embedding's relevance margin to the question (cosine minus the
question's off-topic baseline, so scores compare across questions and languages) plus lexical
overlap of the question's subject terms with the sentence and its section heading. A chosen
sentence that leans on the one before it ("It covers weeks 1–7.") brings that one along.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.grounding.injection import is_instruction, strip_instructions
from assistant.grounding.sentences import split_sentences
from assistant.grounding.terms import coverage, has_term, subject_terms, term_set
from assistant.tooling import Source
from knowledge.embedders import Embedder
from knowledge.relevance import Baseline

LEXICAL_WEIGHT = 0.12  # one fully covered subject ~ a 0.12 cosine margin
RANK_PENALTY = 0.004  # per retrieval rank: ties go to the passage retrieval liked best
MAX_SOURCES = 20
MAX_SENTENCES = 3
KEEP_WITHIN = 0.035  # further sentences are kept when this close to the best score
_LEANS_BACK = re.compile(r"^(?:it|this|that|these|those|they|its|their|there|he|she|such|"
                         r"also|however|otherwise|then|in that case|if so|except)\b|^(?:该|此|这|"
                         r"其|它|他|她|但|但是|否则|另外|此外|如果这样)", re.I)


@dataclass
class Evidence:
    """One selected sentence; ``n`` is the 1-based number of its source (the ``[n]``)."""

    n: int
    text: str
    score: float
    margin: float
    coverage: float
    cross: bool
    position: int
    heading: str = ""

    @property
    def context(self) -> str:
        """The sentence with its document and section title (what coverage is measured on)."""
        return f"{self.heading}: {self.text}" if self.heading else self.text


@dataclass
class _Candidate:
    n: int
    position: int
    text: str
    heading: str


class _VectorCache:
    """Sentence vectors by (embedder, text): the same passages come back turn after turn."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """The lock covers the dictionary only, never the embedding; the vectors are collected
        as they are found, so another turn's eviction in between cannot lose one."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for t in dict.fromkeys(texts):
                vec = self._items.get((embedder.name, t))
                if vec is not None:
                    self._items.move_to_end((embedder.name, t))
                    found[t] = vec
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = np.asarray(embedder.embed_documents(missing), dtype=np.float32)
            found.update(zip(missing, vectors, strict=True))
            with self._lock:
                for text, vec in zip(missing, vectors, strict=True):
                    self._items[(embedder.name, text)] = vec
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return np.stack([found[t] for t in texts])


_cache = _VectorCache()


def _section(source: Source) -> str:
    """The document title and section path: context for sentences that do not repeat them."""
    heading = (source.metadata or {}).get("heading") or ""
    title = source.title or ""
    parts = [p for p in heading.split(" > ") if p and p not in title]
    return " — ".join([title, *parts]) if title else " — ".join(parts)


def candidates(sources: Sequence[Source], max_sources: int = MAX_SOURCES) -> list[_Candidate]:
    out: list[_Candidate] = []
    for n, source in enumerate(sources[:max_sources], 1):
        heading = _section(source)
        for i, sentence in enumerate(split_sentences(strip_instructions(source.text))):
            if not is_instruction(sentence):  # a document's orders to the assistant are no evidence
                out.append(_Candidate(n, i, sentence, heading))
    return out


def idf_weights(terms: list[str], texts: Sequence[str]) -> dict[str, float]:
    """Rare terms weigh more: "calculator" decides, "exam" is everywhere in an exam section."""
    sets = [term_set(t) for t in texts]
    n = len(sets)
    weights = {}
    for t in terms:
        df = sum(has_term(t, s) for s in sets)
        # a Chinese bigram found nowhere is most likely a word boundary ("书弄" in 书弄丢了),
        # not a missing subject: it weighs as little as the commonest term
        weights[t] = math.log(1.0 + (n + 1) / (1 + (n if df == 0 and not t.isascii() else df)))
    return weights


def score_sentences(question: str, sources: Sequence[Source], embedder: Embedder,
                    max_sources: int = MAX_SOURCES) -> list[Evidence]:
    """Every sentence of the top sources, scored, best first."""
    cands = candidates(sources, max_sources)
    if not cands:
        return []
    qvec = np.asarray(embedder.embed_queries([question]), dtype=np.float32)[0]
    texts = [f"{c.heading}: {c.text}" if c.heading else c.text for c in cands]
    cosines = _cache.embed(embedder, texts) @ qvec
    baseline = Baseline(embedder, question, qvec)
    terms = subject_terms(question)
    weights = idf_weights(terms, texts)
    scored: list[Evidence] = []
    for c, text, cos in zip(cands, texts, cosines, strict=True):
        margin, cross = baseline.margin(float(cos), c.text)
        cov = coverage(terms, text, weights) if terms else 0.0
        score = margin + LEXICAL_WEIGHT * cov - RANK_PENALTY * (c.n - 1)
        scored.append(Evidence(c.n, c.text, score, margin, cov, cross, c.position, c.heading))
    scored.sort(key=lambda e: e.score, reverse=True)
    return scored


def select_evidence(question: str, sources: Sequence[Source], embedder: Embedder, *,
                    max_sentences: int = MAX_SENTENCES, scored: list[Evidence] | None = None,
                    neighbours: list[Evidence] | None = None) -> list[Evidence]:
    """The best of ``scored`` (default: every sentence; the agent passes the ones that passed
    the answerability test), plus a sentence one of them leans on, in reading order."""
    if scored is None:
        scored = score_sentences(question, sources, embedder)
    if not scored:
        return []
    best = scored[0].score
    chosen = [e for e in scored[:max_sentences] if e.score >= best - KEEP_WITHIN] or scored[:1]
    by_key = {(e.n, e.position): e for e in (neighbours or scored)}
    for e in list(chosen):
        prev = by_key.get((e.n, e.position - 1))
        if prev is not None and prev not in chosen and _LEANS_BACK.search(e.text):
            chosen.append(prev)
        after = by_key.get((e.n, e.position + 1))
        if after is not None and after not in chosen and _LEANS_BACK.search(after.text):
            chosen.append(after)
    chosen.sort(key=lambda e: (e.n, e.position))
    return chosen
