"""Read ``.txt``, ``.md``, ``.pdf``, ``.html`` and ``.docx`` files into sections of text.

A loader never follows links or fetches anything a document mentions. Text that is not
UTF-8 is decoded as GB18030 (common for Chinese files) or Windows-1252 when that decodes
cleanly, and the report says so; bytes that look binary are refused.

What a file may unpack to is bounded (``knowledge.unpacking.UnpackLimits``): a ``.docx`` is
checked as an archive before python-docx reads it, and a PDF's streams, pages and text are
capped while pypdf reads it. Any failure of a parser on a damaged file becomes
``UnreadableDocument`` (``DocumentTooLarge`` for a limit), never another exception.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.errors import DocumentTooLarge, UnreadableDocument, WrongFormat
from knowledge.unpacking import UnpackLimits, check_docx, mb

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


def load_file(path: Path, source: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
              limits: UnpackLimits | None = None) -> LoadedDocument:
    """Read one file; ``UnreadableDocument`` says why it cannot be used."""
    limits = limits or UnpackLimits()
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
        raise DocumentTooLarge(f"the file has {size / 1e6:.1f} MB; the limit is "
                                 f"{max_bytes / 1e6:.1f} MB")
    if size == 0:
        raise UnreadableDocument("the file is empty")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    notes: list[str] = []
    if suffix == ".pdf":
        sections = _pdf(data, limits)
    elif suffix == ".docx":
        sections = _docx(data, limits)
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


# pypdf's per-stream output limits, tightened to ``max_unpacked_bytes`` (never loosened)
_PDF_STREAM_LIMITS = ("zlib_maximum_output_length", "lzw_maximum_output_length",
                      "run_length_maximum_output_length", "brotli_maximum_output_length",
                      "jbig2_maximum_output_length", "array_based_stream_maximum_output_length")


def _pdf(data: bytes, limits: UnpackLimits) -> list[Section]:
    """Each page's text. Bounded: each stream's output (pypdf's limits), the page count, what
    the pages' content streams unpack to together, and the text."""
    import logging

    from pypdf import PdfReader, apply_configuration, get_configuration
    from pypdf.errors import LimitReachedError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it logs every malformed object
    cap = limits.max_unpacked_bytes
    overrides = {k: min(cap, getattr(get_configuration(), k)) for k in _PDF_STREAM_LIMITS}
    try:
        with apply_configuration(**overrides):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                try:
                    ok = bool(reader.decrypt(""))  # PasswordType.NOT_DECRYPTED is 0
                except Exception:  # noqa: BLE001 - any failure means "cannot open"
                    ok = False
                if not ok:
                    raise UnreadableDocument("the PDF is encrypted with a password")
            if len(reader.pages) > limits.max_pdf_pages:
                raise DocumentTooLarge(f"the PDF has {len(reader.pages):,} pages, over the limit of "
                                       f"{limits.max_pdf_pages:,} ([knowledge] max_pdf_pages)")
            sections: list[Section] = []
            seen: set[int] = set()
            unpacked = chars = 0
            for n, page in enumerate(reader.pages, 1):
                unpacked += _unpack_page_streams(page, seen)
                if unpacked > cap:
                    raise DocumentTooLarge(f"the PDF's pages unpack to more than {mb(cap)} (by page "
                                           f"{n}), the limit ([knowledge] max_unpacked_mb)")
                text = page.extract_text() or ""
                chars += len(text)
                if chars > cap:
                    raise DocumentTooLarge(f"the PDF's text is over {cap:,} characters (by page {n}), "
                                           f"the limit ([knowledge] max_unpacked_mb)")
                sections.append(Section(text, page=n))
            return sections
    except UnreadableDocument:
        raise
    except LimitReachedError as exc:
        stream_cap = mb(overrides["zlib_maximum_output_length"])
        raise DocumentTooLarge(f"the PDF goes over a limit while unpacking ({str(exc)[:120]}); one "
                               f"stream may unpack to {stream_cap} (the lower of pypdf's own limit "
                               f"and [knowledge] max_unpacked_mb)") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
        raise UnreadableDocument(f"the PDF is damaged or unreadable ({type(exc).__name__})") from None


def _unpack_page_streams(page: Any, seen: set[int]) -> int:
    """Decode the streams text extraction will read for ``page`` (its contents and the form
    XObjects its resources name, nested ones too) and return their size, each stream counted
    once per document. pypdf keeps the decoded data, so extraction does not decode them again."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    total = 0
    contents = _resolve(page.get("/Contents"))
    todo = list(contents) if isinstance(contents, ArrayObject) else [contents]
    resources = [(_resolve(page.get("/Resources")), 0)]
    while todo or resources:
        if todo:
            stream = _resolve(todo.pop())
            if isinstance(stream, StreamObject) and id(stream) not in seen:
                seen.add(id(stream))
                total += len(stream.get_data())
            continue
        res, depth = resources.pop()
        xobjects = _resolve(res.get("/XObject")) if isinstance(res, DictionaryObject) else None
        if not isinstance(xobjects, DictionaryObject) or depth > 20:
            continue
        for ref in xobjects.values():
            form = _resolve(ref)
            if isinstance(form, StreamObject) and form.get("/Subtype") == "/Form" \
                    and id(form) not in seen:
                todo.append(form)
                resources.append((_resolve(form.get("/Resources")), depth + 1))
    return total


def _resolve(obj: Any) -> Any:
    return obj.get_object() if obj is not None and hasattr(obj, "get_object") else obj


_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0", re.I)


def _hidden(tag: Any) -> bool:
    """An element the page never shows: ``hidden``, ``aria-hidden``, ``display:none``."""
    attrs = getattr(tag, "attrs", None) or {}
    return ("hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true"
            or bool(_HIDDEN_STYLE.search(str(attrs.get("style", "")))))


def _html(text: str) -> Section:
    """Visible text with headings turned into Markdown headings; links are not followed."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "svg", "head"]):
        tag.decompose()
    for tag in soup.find_all(_hidden):  # a reader never sees it; an injected order often hides
        tag.decompose()
    for level in range(1, 7):
        for h in soup.find_all(f"h{level}"):
            h.replace_with(f"\n\n{'#' * level} {h.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "li", "tr", "br", "div"]):
        block.insert_after("\n")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in soup.get_text().splitlines()]
    return Section(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip(), markdown=True)


def _docx(data: bytes, limits: UnpackLimits) -> list[Section]:
    try:
        check_docx(data, limits)  # before python-docx decompresses or parses anything
    except WrongFormat as exc:
        raise UnreadableDocument(f"not a .docx document ({exc})") from None
    from docx import Document

    try:
        return [Section(_docx_text(Document(io.BytesIO(data))), markdown=True)]
    except Exception as exc:  # noqa: BLE001 - python-docx and lxml raise many kinds on a damaged file
        raise UnreadableDocument(f"the .docx file is damaged or unreadable ({_problem(exc)})") from None


def _docx_text(doc: Any) -> str:
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
    return "\n".join(lines).strip()


def _problem(exc: Exception) -> str:
    """A short description of a parser's exception (lxml's messages end with a location in a
    string that means nothing to a user)."""
    kind = "invalid XML" if type(exc).__name__ == "XMLSyntaxError" else type(exc).__name__
    message = str(exc).split(" (<string>")[0].strip().strip("\"'")[:160]
    return f"{kind}: {message}" if message else kind
