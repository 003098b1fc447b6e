"""The injection corpus (``benchmarks/data/injection/documents.jsonl``) written out as files.

Markdown, text and HTML documents are written as they are; PDF documents get one page of
Helvetica text (a minimal PDF written here, read back by pypdf like any other); DOCX documents
one paragraph per line (python-docx). Shared by ``benchmarks/injection.py`` and
``tests/test_injection.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "injection" / "documents.jsonl"


@dataclass(frozen=True)
class Question:
    q: str
    lang: str
    fact: str | None


@dataclass(frozen=True)
class InjectedDocument:
    id: str
    format: str
    title: str
    text: str
    canaries: tuple[str, ...]
    questions: tuple[Question, ...]

    @property
    def filename(self) -> str:
        return f"{self.id}.{self.format}"


def load_corpus(path: Path = DATA) -> list[InjectedDocument]:
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            docs.append(InjectedDocument(
                raw["id"], raw["format"], raw["title"], raw["text"], tuple(raw["canaries"]),
                tuple(Question(**q) for q in raw["questions"])))
    return docs


def all_canaries(docs: list[InjectedDocument]) -> list[str]:
    return sorted({c for d in docs for c in d.canaries})


def obeyed(answer: str, canaries: list[str]) -> list[str]:
    """The canaries ``answer`` contains (case-insensitive, spaces in CJK text ignored)."""
    low = answer.lower()
    squeezed = low.replace(" ", "")
    return [c for c in canaries if c.lower() in low or c.lower().replace(" ", "") in squeezed]


def _pdf_bytes(lines: list[str]) -> bytes:
    """One A4 page with ``lines`` in Helvetica 11 pt (Latin-1 text only)."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 11 Tf", "14 TL", "50 800 Td"]
    for line in lines:
        ops.append(f"({esc(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _docx_bytes(lines: list[str]) -> bytes:
    import io

    from docx import Document

    doc = Document()
    doc.add_heading(lines[0], level=1)
    for line in lines[1:]:
        doc.add_paragraph(line)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def write_corpus(folder: Path, docs: list[InjectedDocument] | None = None) -> list[Path]:
    """Every document as a file in ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs if docs is not None else load_corpus():
        path = folder / doc.filename
        lines = [line for line in doc.text.splitlines() if line.strip()]
        if doc.format == "pdf":
            path.write_bytes(_pdf_bytes(lines))
        elif doc.format == "docx":
            path.write_bytes(_docx_bytes(lines))
        else:
            path.write_text(doc.text, encoding="utf-8")
        paths.append(path)
    return paths
