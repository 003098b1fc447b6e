"""The upload store refuses every bad file of issue 4 with the matching error, quickly."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assistant.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from assistant.uploads import UploadStore, sniff_mime


def png_bytes(size: tuple[int, int] = (32, 24), mode: str = "RGB", color: object = (200, 30, 30)
              ) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")  # type: ignore[arg-type]
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_bomb(width: int, height: int, rows: int = 64) -> bytes:
    """A valid-looking PNG header announcing width×height grey pixels, with a few rows of
    compressed zeros: a decompression bomb built in milliseconds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * ((width + 1) * rows), 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


@pytest.fixture
def store(tmp_path: Path) -> UploadStore:
    return UploadStore(tmp_path / "uploads", max_bytes=2 * 1024 * 1024, max_pixels=40_000_000)


def test_valid_png_round_trip(store: UploadStore) -> None:
    data = png_bytes((32, 24))
    up = store.save(data, "photo.png", tenant="acme")
    assert up.mime == "image/png" and (up.width, up.height) == (32, 24)
    assert up.size == len(data) and up.path.read_bytes() == data
    assert up.path.parent == store.root / "acme"
    assert up.id in up.path.name and "photo" not in up.path.name  # nothing user-chosen in path
    again = store.get("acme", up.id)
    assert again == up


def test_type_comes_from_content_not_name(store: UploadStore) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(buf, format="JPEG")
    up = store.save(buf.getvalue(), "picture.png", tenant="t")  # a JPEG named .png
    assert up.mime == "image/jpeg" and up.path.suffix == ".jpg"


def test_text_file_named_jpg_is_refused(store: UploadStore) -> None:
    with pytest.raises(UnsupportedMedia, match=r"not an image: 'notes.jpg' \(detected text/plain\)"):
        store.save(b"Dear teacher,\nhere is my homework.\n", "notes.jpg", tenant="t")


def test_zero_bytes_is_refused(store: UploadStore) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        store.save(b"", "empty.png", tenant="t")


def test_too_many_bytes_is_refused(tmp_path: Path) -> None:
    small = UploadStore(tmp_path, max_bytes=100, max_pixels=1000)
    with pytest.raises(PayloadTooLarge, match="over the upload limit"):
        small.save(png_bytes((64, 64), color=(1, 2, 3)) + b"\0" * 200, "big.png", tenant="t")


def test_save_path_checks_size_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes() + b"\0" * 500)
    small = UploadStore(tmp_path / "u", max_bytes=100, max_pixels=1000)
    with pytest.raises(PayloadTooLarge):
        small.save_path(big, tenant="t")
    with pytest.raises(InvalidInput, match="no such file"):
        small.save_path(tmp_path / "missing.png", tenant="t")


def test_truncated_png_is_refused(store: UploadStore) -> None:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, format="PNG")
    data = buf.getvalue()
    with pytest.raises(InvalidInput, match="damaged or truncated"):
        store.save(data[: len(data) // 2], "cut.png", tenant="t")


def test_truncated_jpeg_is_refused(store: UploadStore) -> None:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    data = buf.getvalue()
    with pytest.raises(InvalidInput):
        store.save(data[: len(data) // 3], "cut.jpg", tenant="t")


@pytest.mark.parametrize("side", [20_000, 7_000])
def test_decompression_bomb_is_refused_fast_without_allocating(store: UploadStore,
                                                               side: int) -> None:
    bomb = png_bomb(side, side)
    assert len(bomb) < 200_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(PayloadTooLarge, match="pixels"):
            store.save(bomb, "bomb.png", tenant="t")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024  # 20000² grey pixels would need 400 MB


def test_pixel_limit_is_the_setting(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_bytes=10_000_000, max_pixels=100)
    with pytest.raises(PayloadTooLarge, match="11×10 = 110 pixels"):
        store.save(png_bytes((11, 10)), "a.png", tenant="t")
    assert store.save(png_bytes((10, 10)), "b.png", tenant="t").width == 10


def test_one_pixel_image_is_stored(store: UploadStore) -> None:
    up = store.save(png_bytes((1, 1)), "dot.png", tenant="t")
    assert (up.width, up.height) == (1, 1)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
def test_other_image_formats(store: UploadStore, fmt: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (12, 9), (10, 200, 10)).save(buf, format=fmt)
    up = store.save(buf.getvalue(), f"x.{fmt.lower()}", tenant="t")
    assert up.mime == f"image/{fmt.lower()}" and (up.width, up.height) == (12, 9)


def test_other_tenants_and_unknown_ids_are_not_found(store: UploadStore) -> None:
    up = store.save(png_bytes(), "a.png", tenant="alice")
    with pytest.raises(NotFound):
        store.get("bob", up.id)
    with pytest.raises(NotFound):
        store.get("alice", "A" * 22)
    for bad in ["../alice/" + up.id, up.id + "/../x", "..", "", up.id + ".json"]:
        with pytest.raises(NotFound):
            store.get("alice", bad)


def test_bad_tenant_names_are_refused(store: UploadStore) -> None:
    for tenant in ["..", "../x", "a/b", "", "."]:
        with pytest.raises(InvalidInput, match="tenant"):
            store.save(png_bytes(), "a.png", tenant=tenant)


def test_ids_are_random(store: UploadStore) -> None:
    ids = {store.save(png_bytes(), "a.png", tenant="t").id for _ in range(5)}
    assert len(ids) == 5


def test_sniff_mime() -> None:
    assert sniff_mime(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff_mime("你好，老师".encode()) == "text/plain"
    assert sniff_mime(bytes(range(256))[:64]) == "application/octet-stream"
