"""Read ``.txt``, ``.md``, ``.pdf``, ``.html`` and ``.docx`` files into sections of text.

A loader never follows links or fetches anything a document mentions. Text that is not
UTF-8 is decoded as GB18030 (common for Chinese files) or Windows-1252 when that decodes
cleanly, and the report says so; bytes that look binary are refused.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.errors import UnreadableDocument

SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".docx")
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass
class Section:
    """A stretch of text with where it came from (``markdown``: headings as ``#`` lines)."""

    text: str
    page: int | None = None
    markdown: bool = False


@dataclass
class LoadedDocument:
    source: str
    title: str
    content_hash: str
    sections: list[Section]
    notes: list[str] = field(default_factory=list)


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Each file to ingest with its source name: the file name, or ``folder/relative/path``
    for files found under a folder (hidden files and unknown suffixes are left out)."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if child.is_file() and child.suffix.lower() in SUFFIXES:
                    yield child, f"{path.resolve().name}/{rel.as_posix()}"
        else:
            yield path, path.name


def load_file(path: Path, source: str | None = None,
              max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedDocument:
    """Read one file; ``UnreadableDocument`` says why it cannot be used."""
    path = Path(path)
    source = source or path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnreadableDocument(f"unsupported file type {suffix or '(none)'}; "
                                 f"use one of {', '.join(SUFFIXES)}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableDocument(f"cannot read the file: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise UnreadableDocument(f"the file has {size / 1e6:.1f} MB; the limit is "
                                 f"{max_bytes / 1e6:.1f} MB")
    if size == 0:
        raise UnreadableDocument("the file is empty")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    notes: list[str] = []
    if suffix == ".pdf":
        sections = _pdf(data)
    elif suffix == ".docx":
        sections = _docx(data)
    else:
        text, encoding = decode_text(data)
        if encoding != "utf-8":
            notes.append(f"not UTF-8: decoded as {encoding}")
        if suffix in (".html", ".htm"):
            sections = [_html(text)]
        else:
            sections = [Section(text, markdown=suffix in (".md", ".markdown"))]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise UnreadableDocument("no text found (a scanned PDF or an empty document?)")
    return LoadedDocument(source=source, title=_title(sections, path), content_hash=digest,
                          sections=sections, notes=notes)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes that should be text, or refuse them as binary."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        if b"\x00" in data[:8192]:
            raise UnreadableDocument("this looks like a binary file, not text")
        candidates = ["utf-8-sig", "gb18030", "cp1252"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            raise UnreadableDocument("this looks like a binary file, not text")
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise UnreadableDocument("the text is not UTF-8 (nor GB18030 or Windows-1252)")


def _looks_binary(text: str) -> bool:
    sample = text[:20000]
    if not sample:
        return False
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    return controls / len(sample) > 0.01


def _title(sections: list[Section], path: Path) -> str:
    for section in sections:
        for line in section.text.splitlines():
            line = line.strip()
            if section.markdown and line.startswith("#"):
                return line.lstrip("#").strip()[:200] or path.stem
            if line:
                break
    return path.stem


def _pdf(data: bytes) -> list[Section]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it logs every malformed object
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:  # noqa: BLE001 - any failure means "cannot open"
                ok = 0
            if not ok:
                raise UnreadableDocument("the PDF is encrypted with a password")
        return [Section(page.extract_text() or "", page=n) for n, page in enumerate(reader.pages, 1)]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            OSError, RecursionError) as exc:
        raise UnreadableDocument(f"the PDF is damaged or unreadable ({type(exc).__name__})") from None


def _html(text: str) -> Section:
    """Visible text with headings turned into Markdown headings; links are not followed."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "svg", "head"]):
        tag.decompose()
    for level in range(1, 7):
        for h in soup.find_all(f"h{level}"):
            h.replace_with(f"\n\n{'#' * level} {h.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "li", "tr", "br", "div"]):
        block.insert_after("\n")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in soup.get_text().splitlines()]
    return Section(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip(), markdown=True)


def _docx(data: bytes) -> list[Section]:
    import zipfile

    from docx import Document

    try:
        doc = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"the .docx file is damaged or unreadable ({type(exc).__name__})") \
            from None
    lines = []
    for para in doc.paragraphs:
        text = para.text.strip()
        style = (para.style.name or "") if para.style is not None else ""
        match = re.match(r"Heading (\d)", style)
        if match and text:
            lines.append(f"\n{'#' * int(match.group(1))} {text}\n")
        elif style == "Title" and text:
            lines.append(f"\n# {text}\n")
        else:
            lines.append(text)
    for table in doc.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return [Section("\n".join(lines).strip(), markdown=True)]
