"""Normalisation of awkward images (EXIF rotation, CMYK, 16-bit, alpha, palette, animation)
and the ImageNet preprocessing, on real PIL-encoded files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assistant.errors import InvalidInput
from tools.image_classification.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_array,
    normalise,
    open_rgb,
    resize_center_crop,
    small_array,
)


def _save(im: Image.Image, path: Path, fmt: str, **kwargs: object) -> Path:
    im.save(path, format=fmt, **kwargs)
    return path


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 20))  # a blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = open_rgb(_save(im, tmp_path / "rot.jpg", "JPEG", exif=exif, quality=95))
    assert out.size == (20, 40)
    top = np.asarray(out)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the left band is now at the top


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    im = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    out = open_rgb(_save(im, tmp_path / "cmyk.jpg", "JPEG", quality=95))
    r, g, b = np.asarray(out)[8, 8]
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16bit_greyscale_keeps_its_range(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    im = Image.fromarray(ramp)
    assert im.mode.startswith("I;16")
    out = open_rgb(_save(im, tmp_path / "deep.png", "PNG"))
    arr = np.asarray(out)
    assert out.mode == "RGB"
    assert arr[0, 0, 0] == 0 and arr[0, -1, 0] == 255 and 100 < arr[0, 32, 0] < 160


def test_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 5, 10))
    out = open_rgb(_save(im, tmp_path / "alpha.png", "PNG"))
    arr = np.asarray(out)
    assert tuple(arr[5, 2]) == (255, 0, 0) and tuple(arr[5, 8]) == (255, 255, 255)


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 5, 10))
    out = open_rgb(_save(im, tmp_path / "pal.png", "PNG", transparency=0))
    arr = np.asarray(out)
    assert tuple(arr[5, 2]) == (0, 255, 0) and tuple(arr[5, 8]) == (255, 255, 255)


def test_la_greyscale_alpha(tmp_path: Path) -> None:
    im = Image.new("LA", (6, 6), (0, 255))
    out = open_rgb(_save(im, tmp_path / "la.png", "PNG"))
    assert out.mode == "RGB" and tuple(np.asarray(out)[3, 3]) == (0, 0, 0)


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
    r, g, b = np.asarray(open_rgb(path))[6, 6]
    assert r > 200 and g < 50 and b < 50


def test_animated_gif_opened_on_a_later_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    with Image.open(path) as im:
        im.seek(1)
        out = normalise(im)
    assert np.asarray(out)[0, 0, 0] > 200  # red: the first frame, whatever the cursor was


def test_undecodable_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InvalidInput, match="cannot read image x.png"):
        open_rgb(path)


def test_imagenet_array_shape_and_normalisation() -> None:
    white = Image.new("RGB", (300, 200), (255, 255, 255))
    arr = imagenet_array(white)
    assert arr.shape == (3, 224, 224) and arr.dtype == np.float32
    expected = (1.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(arr[:, 100, 100], expected, rtol=1e-5)


def test_centre_crop_keeps_the_centre() -> None:
    im = Image.new("RGB", (600, 300), (0, 0, 0))
    im.paste((255, 255, 255), (250, 100, 350, 200))  # a white square in the middle
    out = np.asarray(resize_center_crop(im))
    assert out.shape == (224, 224, 3)
    assert out[112, 112, 0] == 255 and out[5, 5, 0] == 0


def test_extreme_aspect_ratio_does_not_blow_up() -> None:
    im = Image.new("RGB", (40_000, 10), (10, 20, 30))  # 400k pixels, would be 1M×256 resized
    assert imagenet_array(im).shape == (3, 224, 224)


def test_small_array_range() -> None:
    arr = small_array(Image.new("RGB", (8, 8), (255, 0, 128)), 32)
    assert arr.shape == (3, 32, 32)
    assert arr[0].max() == pytest.approx(1.0) and arr[1].min() == pytest.approx(-1.0)


def test_jpeg_bytes_round_trip_through_normalise() -> None:
    buf = io.BytesIO()
    Image.new("L", (9, 9), 128).save(buf, format="JPEG")
    buf.seek(0)
    with Image.open(buf) as im:
        out = normalise(im)
    assert out.mode == "RGB" and abs(int(np.asarray(out)[4, 4, 0]) - 128) <= 2
