"""Split sections into chunks (``langchain-text-splitters``), keeping page and heading path.

Sizes are counted in "token-like units": one CJK character counts 1 and other characters
count 1/4, so a chunk holds about the same amount of meaning in Chinese and in English
(~160 Chinese characters or ~640 English characters), well inside the embedder's window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from knowledge.loaders import Section
from knowledge.sanitize import strip_control_tokens

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]


def units(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


@dataclass
class Chunk:
    text: str
    heading: str | None = None
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def embedding_text(self) -> str:
        """What the embedder and the lexical index see: the heading path gives context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


class Splitter:
    def __init__(self, chunk_units: int = 160, overlap_units: int = 24) -> None:
        self._markdown = MarkdownHeaderTextSplitter(HEADERS, strip_headers=True)
        self._recursive = RecursiveCharacterTextSplitter(
            chunk_size=chunk_units, chunk_overlap=overlap_units, length_function=units,
            separators=SEPARATORS, keep_separator="end", strip_whitespace=True)

    def split(self, sections: Iterable[Section]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in sections:
            text = strip_control_tokens(section.text)  # a document never speaks as the system
            if section.markdown:
                parts = [(doc.page_content, _heading(doc.metadata))
                         for doc in self._markdown.split_text(text)]
            else:
                parts = [(text, None)]
            for text, heading in parts:
                for piece in self._recursive.split_text(text):
                    piece = piece.strip()
                    if piece:
                        chunks.append(Chunk(piece, heading=heading, page=section.page))
        return chunks


def _heading(metadata: dict[str, Any]) -> str | None:
    path = [str(metadata[key]) for _, key in HEADERS if metadata.get(key)]
    return " > ".join(path) or None
