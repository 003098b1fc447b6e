"""Loaders, splitting and the lexical index: no embedding model needed."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import NameObject

from knowledge.errors import UnreadableDocument
from knowledge.lexical import BM25Index, rrf, tokenize
from knowledge.loaders import Section, decode_text, iter_files, load_file
from knowledge.splitting import Splitter, units


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    """A real PDF with text on each page (drawn with a standard font)."""
    from pypdf.generic import DecodedStreamObject, DictionaryObject

    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                 NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica")})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
            {NameObject("/F1"): writer._add_object(font)})})
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    if password:
        writer.encrypt(user_password=password, owner_password=password)
    buf = io.BytesIO()
    writer.write(buf)
    path.write_bytes(buf.getvalue())
    return path


def test_pdf_pages_keep_their_numbers(tmp_path: Path) -> None:
    doc = load_file(make_pdf(tmp_path / "notes.pdf", ["Loops repeat code.", "Functions name code."]))
    assert [s.page for s in doc.sections] == [1, 2]
    assert "Functions name code." in doc.sections[1].text
    assert doc.source == "notes.pdf" and len(doc.content_hash) == 64


def test_encrypted_and_corrupt_pdfs_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="encrypted"):
        load_file(make_pdf(tmp_path / "secret.pdf", ["hidden"], password="s3cret"))
    good = make_pdf(tmp_path / "good.pdf", ["some text"]).read_bytes()
    (tmp_path / "broken.pdf").write_bytes(good[: len(good) // 3])
    with pytest.raises(UnreadableDocument, match="damaged|unreadable|no text"):
        load_file(tmp_path / "broken.pdf")
    (tmp_path / "fake.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    with pytest.raises(UnreadableDocument):
        load_file(tmp_path / "fake.pdf")


def test_binary_empty_and_oversized_files(tmp_path: Path) -> None:
    (tmp_path / "image.txt").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(UnreadableDocument, match="binary"):
        load_file(tmp_path / "image.txt")
    (tmp_path / "empty.md").write_bytes(b"")
    with pytest.raises(UnreadableDocument, match="empty"):
        load_file(tmp_path / "empty.md")
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:  # sparse: 50 MB + 1 byte without writing them
        fh.truncate(50 * 1024 * 1024 + 1)
    with pytest.raises(UnreadableDocument, match="limit is 52.4 MB"):
        load_file(big)
    (tmp_path / "small.txt").write_text("twelve bytes")
    with pytest.raises(UnreadableDocument, match="limit"):
        load_file(tmp_path / "small.txt", max_bytes=5)
    (tmp_path / "whitespace.txt").write_text("   \n\n  ")
    with pytest.raises(UnreadableDocument, match="no text"):
        load_file(tmp_path / "whitespace.txt")
    (tmp_path / "data.csv").write_text("a,b")
    with pytest.raises(UnreadableDocument, match="unsupported"):
        load_file(tmp_path / "data.csv")


def test_text_that_is_not_utf8_is_decoded_and_reported(tmp_path: Path) -> None:
    (tmp_path / "gbk.txt").write_bytes("期末考试在大礼堂举行。".encode("gb18030"))
    doc = load_file(tmp_path / "gbk.txt")
    assert doc.sections[0].text == "期末考试在大礼堂举行。"
    assert doc.notes == ["not UTF-8: decoded as gb18030"]
    (tmp_path / "latin.txt").write_bytes("Café opens at 9 — naïve résumé".encode("cp1252"))
    assert load_file(tmp_path / "latin.txt").sections[0].text.startswith("Café")
    assert decode_text("héllo".encode("utf-16"))[0] == "héllo"
    assert decode_text(b"\xef\xbb\xbfplain")[0] == "plain"  # BOM stripped


def test_html_and_docx_keep_headings_and_never_fetch(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text(
        "<html><head><title>x</title><script>fetch('http://evil')</script></head><body>"
        "<h1>Policies</h1><h2>Late work</h2><p>Late work loses 10% per day.</p>"
        "<img src='http://example.com/track.png'><a href='http://example.com/more'>more</a>"
        "</body></html>")
    doc = load_file(tmp_path / "p.html")
    text = doc.sections[0].text
    assert "## Late work" in text and "Late work loses 10% per day." in text
    assert "fetch" not in text and doc.title == "Policies"
    from docx import Document

    d = Document()
    d.add_heading("Syllabus", level=1)
    d.add_heading("Exams", level=2)
    d.add_paragraph("The final exam is on 16 December.")
    d.save(str(tmp_path / "s.docx"))
    chunks = Splitter().split(load_file(tmp_path / "s.docx").sections)
    assert chunks[0].heading == "Syllabus > Exams"
    assert chunks[0].text == "The final exam is on 16 December."
    (tmp_path / "bad.docx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnreadableDocument, match="docx"):
        load_file(tmp_path / "bad.docx")


def test_folders_give_relative_source_names(tmp_path: Path) -> None:
    root = tmp_path / "course"
    (root / "week1").mkdir(parents=True)
    (root / "week1" / "a.md").write_text("# A")
    (root / ".git").mkdir()
    (root / ".git" / "x.md").write_text("hidden")
    (root / "photo.jpg").write_bytes(b"\xff\xd8")
    assert [s for _, s in iter_files([root])] == ["course/week1/a.md"]


def test_splitting_sizes_suit_chinese_and_english() -> None:
    zh = "期中考试在第八周举行，考试范围包括变量、循环和函数。" * 30
    en = "The midterm exam is held in week eight and covers loops and functions. " * 30
    splitter = Splitter(chunk_units=160, overlap_units=24)
    zh_chunks = splitter.split([Section(zh)])
    en_chunks = splitter.split([Section(en)])
    assert all(units(c.text) <= 160 for c in zh_chunks + en_chunks)
    assert 3 <= len(zh_chunks) <= 8 and 3 <= len(en_chunks) <= 8
    assert all(c.text.endswith(("。", "，", "、")) for c in zh_chunks[:-1])  # split at punctuation
    md = Section("# Handbook\n\n## Attendance\n\nLabs are compulsory.\n\n## Exams\n\nClosed book.",
                 markdown=True)
    chunks = splitter.split([md])
    assert [(c.heading, c.text) for c in chunks] == [
        ("Handbook > Attendance", "Labs are compulsory."), ("Handbook > Exams", "Closed book.")]
    assert chunks[0].embedding_text() == "Handbook > Attendance\nLabs are compulsory."


def test_tokenize_words_and_cjk_bigrams() -> None:
    assert tokenize("What is the Final-Exam date?") == ["final", "exam", "date"]
    assert tokenize("期末考试") == ["期", "末", "考", "试", "期末", "末考", "考试"]


def test_bm25_ranks_exact_terms_and_rrf_fuses() -> None:
    texts = ["Plagiarism gives zero marks.", "Office hours are on Tuesday.",
             "期末考试在大礼堂。", "Labs are on Wednesday afternoons."]
    bm = BM25Index(texts)
    assert bm.top("plagiarism policy", 3)[0][0] == 0
    assert bm.top("期末考试在哪里", 3)[0][0] == 2
    assert bm.top("zebra", 3) == []
    fused = rrf([[1, 2, 3], [3, 1]], k=10)
    assert [item for item, _ in fused] == [1, 3, 2]
    assert rrf([[1, 2], [2]], k=10, weights=[1.0, 0.0])[0][0] == 1
