"""Image normalisation and the ImageNet preprocessing, with PIL and numpy only (no torchvision).

``normalise`` turns whatever PIL opened (EXIF-rotated, CMYK, 16-bit, alpha, palette, animated)
into an upright 8-bit RGB image; ``imagenet_array`` resizes the short side to 256, crops the
centre 224×224 and applies the ImageNet mean/std, giving a float32 CHW array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from assistant.errors import InvalidInput

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
RESIZE = 256
CROP = 224
MIN_SIDE = 8  # sklearn's digits are 8×8; a 1×1 picture carries nothing to classify

_HIGH_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def open_rgb(path: Path | str) -> Image.Image:
    """Open an image file and return it normalised; ``InvalidInput`` if it cannot be decoded."""
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            return normalise(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"cannot read image {Path(path).name}: {exc}") from None


def normalise(im: Image.Image) -> Image.Image:
    """Upright 8-bit RGB, first frame only, transparency flattened onto white."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    try:
        frame = ImageOps.exif_transpose(im) or im  # a copy, rotated as the camera said
    except Exception:  # noqa: BLE001 - malformed EXIF must not make a readable image fail
        frame = im.copy()
    if frame.mode in _HIGH_DEPTH_MODES:
        frame = _to_8bit(frame)
    if frame.mode == "P":
        frame = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
    if frame.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        frame.mode in ("L", "RGB") and "transparency" in frame.info
    ):
        rgba = frame.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        frame = Image.alpha_composite(background, rgba)
    if frame.mode != "RGB":
        frame = frame.convert("RGB")
    return frame


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit or float greyscale → 8-bit, keeping contrast (values scaled by the type's range)."""
    arr = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    else:
        scaled = arr / 257.0 if arr.max(initial=0) > 255 else arr
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def resize_center_crop(im: Image.Image, resize: int = RESIZE, crop: int = CROP) -> Image.Image:
    """Short side → ``resize``, then the centre ``crop``×``crop``.

    Only the centred square of the short side can reach the crop, so that square is resampled
    directly (``box=``): the same pixels as resizing the whole image, without ever building a
    huge intermediate for a very wide or very tall picture.
    """
    width, height = im.size
    short = min(width, height)
    left, top = (width - short) / 2, (height - short) / 2
    square = im.resize((resize, resize), Image.Resampling.BILINEAR,
                       box=(left, top, left + short, top + short))
    offset = (resize - crop) // 2
    return square.crop((offset, offset, offset + crop, offset + crop))


def imagenet_array(im: Image.Image, resize: int = RESIZE, crop: int = CROP) -> np.ndarray:
    """float32 array (3, crop, crop), ImageNet-normalised, from a normalised RGB image."""
    arr = np.asarray(resize_center_crop(im, resize, crop), dtype=np.float32) / 255.0
    arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def small_array(im: Image.Image, size: int) -> np.ndarray:
    """float32 (3, size, size) in [-1, 1]: the input of the small CNN trained from scratch."""
    arr = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.ascontiguousarray((arr / 127.5 - 1.0).transpose(2, 0, 1))
