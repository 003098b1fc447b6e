"""BM25 over words (Latin scripts) and character bigrams (Chinese, Japanese, Korean).

Chinese has no spaces, and a word segmenter is one more model to ship; overlapping character
bigrams (plus single characters, so one-character queries still match) are the usual
dictionary-free substitute and work well for short passages.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")

# Function words that carry no topic; BM25's idf would mostly discount them anyway, but in
# question/answer retrieval "what is the ..." otherwise matches every passage a little.
STOPWORDS = frozenset("""
a an the and or but if of to in on at by for with from as is are was were be been being am do
does did doing have has had having i me my we our you your he him his she her it its they them
their this that these those what which who whom whose when where why how there here can could
should would will shall may might must not no nor so than too very just also about into over
under again then once any all both each few more most other some such only own same s t don
let us tell please
""".split())


def tokenize(text: str) -> list[str]:
    """Lower-cased words minus stopwords; CJK runs become single characters plus bigrams."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(unicodedata.normalize("NFKC", text).lower()):
        piece = match.group()
        if _CJK_RUN.match(piece):
            tokens.extend(piece)
            tokens.extend(piece[i:i + 2] for i in range(len(piece) - 1))
        elif piece not in STOPWORDS:
            tokens.append(piece)
    return tokens


class BM25Index:
    """A static BM25 index over ``texts`` (rebuilt when the collection changes)."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            counts = Counter(tokenize(text))
            lengths[row] = sum(counts.values())
            for term, tf in counts.items():
                rows.append(row)
                cols.append(vocab.setdefault(term, len(vocab)))
                vals.append(tf)
        self.vocab = vocab
        self.size = len(texts)
        n_terms = len(vocab)
        tf = sparse.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)),
                               shape=(self.size, n_terms))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=n_terms).astype(np.float32)
        idf = np.log1p((self.size - df + 0.5) / (df + 0.5)).astype(np.float32)
        avgdl = float(lengths.mean()) if self.size else 1.0
        norm = k1 * (1 - b + b * lengths / max(avgdl, 1e-9))  # per row
        tf = tf.tocoo()
        weights = idf[tf.col] * tf.data * (k1 + 1) / (tf.data + norm[tf.row])
        self._weights = sparse.csc_matrix((weights.astype(np.float32), (tf.row, tf.col)),
                                          shape=(self.size, n_terms))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text for ``query`` (zeros when no term matches)."""
        counts = Counter(t for t in tokenize(query) if t in self.vocab)
        out = np.zeros(self.size, dtype=np.float32)
        for term, qtf in counts.items():
            col = self._weights.getcol(self.vocab[term])
            out[col.indices] += qtf * col.data
        return out

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best rows with a positive score, best first."""
        scores = self.scores(query)
        nonzero = np.flatnonzero(scores > 0)
        if nonzero.size == 0:
            return []
        k = min(k, nonzero.size)
        best = nonzero[np.argpartition(-scores[nonzero], k - 1)[:k]]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(i), float(scores[i])) for i in best]


def rrf(rankings: Sequence[Sequence[int]], k: int = 60,
        weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: ``sum(w / (k + rank))`` over the rankings an item appears in."""
    fused: dict[int, float] = {}
    for n, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[n]
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))

