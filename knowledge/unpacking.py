"""Limits on what a document may unpack to, and the check of ZIP-based documents (``.docx``).

A 1 MB ZIP archive can declare a 1 GiB member (a "zip bomb"), a million tiny entries, or
entries that overlap. ``check_docx`` refuses such an archive from its directory alone (entry
count, declared sizes, compression ratios) before anything is decompressed, then reads every
member once through a bounded reader that stops at the limits whatever the directory declares,
and refuses entity declarations and DTDs (how "billion laughs" and external-entity attacks
work; Word never writes one). Only then does python-docx see the bytes; it reads members
through ``zipfile``, which stops at the declared sizes checked here, and parses XML with
``resolve_entities=False``.

The PDF limits (streams, pages, text) are applied by ``knowledge.loaders`` with the same
``UnpackLimits``.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

from knowledge.errors import DocumentTooLarge, UnreadableDocument, WrongFormat

MB = 1024 * 1024
RATIO_FLOOR = MB  # a member unpacking to less is not judged by its ratio (harmless either way)
_CHUNK = 256 * 1024
_EOCD, _EOCD64, _EOCD64_LOCATOR, _CENTRAL = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x01\x02"
_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be")
_ENTITY = tuple("<!ENTITY".encode(e) for e in _ENCODINGS)
_DOCTYPE = tuple("<!DOCTYPE".encode(e) for e in _ENCODINGS)
_OVERLAP = max(len(p) for p in _DOCTYPE) - 1
_XML_NAMES = (".xml", ".rels")


@dataclass(frozen=True)
class UnpackLimits:
    """What one document may unpack to (``[knowledge] max_unpacked_mb`` and its neighbours)."""

    max_unpacked_bytes: int = 100 * MB  # an archive's members together; a PDF's streams; its text
    max_compression_ratio: float = 100.0  # one member's unpacked / packed size (from 1 MB up)
    max_entries: int = 2000  # members of an archive (a Word document has a few dozen)
    max_pdf_pages: int = 5000


def mb(n: float) -> str:
    """``n`` bytes as MB for messages: ``100 MB``, ``1,024.5 MB``."""
    value = n / MB
    return f"{value:,.0f} MB" if value == int(value) else f"{value:,.1f} MB"


def check_docx(data: bytes, limits: UnpackLimits) -> None:
    """Refuse a ``.docx`` that is no Word archive (``WrongFormat``), unpacks to too much
    (``DocumentTooLarge``) or is suspicious or damaged (``UnreadableDocument``)."""
    declared = _count_entries(data, limits.max_entries)
    if declared is None:
        raise WrongFormat("not a ZIP archive")
    if declared > limits.max_entries:
        raise UnreadableDocument(f"the archive has more than {limits.max_entries:,} entries, the limit "
                                 f"([knowledge] max_archive_entries); a Word document has a few dozen")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, struct.error):
        raise WrongFormat("not a ZIP archive") from None
    with archive:
        infos = archive.infolist()
        if "word/document.xml" not in {i.filename for i in infos}:
            raise WrongFormat("no word/document.xml")
        _check_declared(infos, limits)
        budget = limits.max_unpacked_bytes
        for info in infos:
            budget -= _read_bounded(archive, info, budget, limits)


def _count_entries(data: bytes, stop_after: int) -> int | None:
    """Entries in the ZIP central directory, counted by walking its records without building
    anything (``zipfile`` makes an object per entry: a 50 MB directory of empty entries would
    cost hundreds of MB). Counting stops past ``stop_after``; None when there is no directory."""
    end = data.rfind(_EOCD, max(0, len(data) - 22 - 65535))
    if end < 0 or len(data) - end < 22:
        return None
    size = struct.unpack_from("<I", data, end + 12)[0]
    record64 = end - 20 - 56  # ZIP64: its end record precedes the locator (as zipfile reads it)
    if record64 >= 0 and data[end - 20:end - 16] == _EOCD64_LOCATOR \
            and data[record64:record64 + 4] == _EOCD64:
        size, end = struct.unpack_from("<Q", data, record64 + 40)[0], record64
    pos, count = end - size, 0
    if pos < 0:
        return None
    while pos + 46 <= end and data[pos:pos + 4] == _CENTRAL and count <= stop_after:
        count += 1
        name, extra, comment = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name + extra + comment
    return count


def _check_declared(infos: list[zipfile.ZipInfo], limits: UnpackLimits) -> None:
    total = sum(i.file_size for i in infos)
    if total > limits.max_unpacked_bytes:
        raise DocumentTooLarge(f"it unpacks to {mb(total)}, over the limit of "
                               f"{mb(limits.max_unpacked_bytes)} ([knowledge] max_unpacked_mb)")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_FLOOR and ratio > limits.max_compression_ratio:
            raise _ratio_error(info, ratio, limits)


def _ratio_error(info: zipfile.ZipInfo, ratio: float, limits: UnpackLimits) -> UnreadableDocument:
    return UnreadableDocument(
        f"member {_name(info)} is compressed {ratio:,.0f}:1, over the limit of "
        f"{limits.max_compression_ratio:g}:1 ([knowledge] max_compression_ratio): a zip bomb?")


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int,
                  limits: UnpackLimits) -> int:
    """Decompress one member in chunks, keeping none of it, and stop as soon as it passes the
    budget, its declared size or the ratio limit, or shows an entity declaration (or, in an
    XML part, a DTD). Returns the bytes it unpacked to."""
    patterns = _ENTITY + (_DOCTYPE if info.filename.lower().endswith(_XML_NAMES) else ())
    ratio_cap = max(RATIO_FLOOR, limits.max_compression_ratio * max(info.compress_size, 1))
    read, tail = 0, b""
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                read += len(chunk)
                if read > budget:
                    raise DocumentTooLarge(
                        f"it unpacks to more than {mb(limits.max_unpacked_bytes)}, the limit "
                        f"([knowledge] max_unpacked_mb), though its directory declares less")
                if read > info.file_size:
                    raise UnreadableDocument(f"member {_name(info)} unpacks to more than the "
                                             f"{info.file_size:,} bytes it declares")
                if read > ratio_cap:
                    raise _ratio_error(info, read / max(info.compress_size, 1), limits)
                window = tail + chunk
                if any(p in window for p in patterns):
                    raise UnreadableDocument(
                        f"member {_name(info)} declares a DTD or XML entities, which Word never "
                        f"writes; refused (entity expansion, 'billion laughs')")
                tail = window[-_OVERLAP:]
    except UnreadableDocument:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile, zlib, bz2, lzma: any failure means damaged
        raise UnreadableDocument(f"member {_name(info)} cannot be unpacked ({type(exc).__name__}: "
                                 f"{str(exc)[:120]})") from None
    return read


def _name(info: zipfile.ZipInfo) -> str:
    """The member's name, quoted and cut, safe to show (it comes from the uploader)."""
    return ascii(info.filename[:100])
