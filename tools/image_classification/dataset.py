"""A training folder (one sub-folder per label) → arrays, with unreadable files reported, not fatal.

Files are checked like uploads (type by magic bytes, pixel count from the header before
decoding, then one decode); anything else is skipped with its reason. Backbone features for
``transfer`` are cached on disk by the file's content hash, so retraining (a new version, other
epochs, another label split) does not pay for the backbone again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from assistant.errors import InvalidInput
from knowledge.atomic import atomic_path

from .backbone import load_backbone
from .preprocess import MIN_SIDE, imagenet_array, normalise, small_array

MIN_PER_CLASS = 3  # one each for train, validation and test
MAX_FILE_BYTES = 50 * 1024 * 1024
FEATURE_BATCH = 16
_PIL_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
          (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _kind(head: bytes) -> str | None:
    """The image format from the magic bytes (the plugin's own copy of the upload check)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "WEBP" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else None


def _describe(head: bytes) -> str:
    for sample in (head, head[:-3]):  # a character may be cut at the end of the sample
        try:
            text = sample.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
            return "text/plain"
    return "application/octet-stream"


@dataclass
class LabelledFiles:
    labels: list[str]
    files: list[tuple[Path, int]]


@dataclass
class Prepared:
    x: np.ndarray
    y: np.ndarray
    labels: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan_folder(data_dir: Path) -> LabelledFiles:
    """Label sub-folders and their files; ``InvalidInput`` unless there are two or more."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InvalidInput(f"training data folder not found: {data_dir}")
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        found = ", ".join(repr(p.name) for p in folders) or "none"
        raise InvalidInput(
            f"{data_dir} needs one sub-folder per label and at least two labels; found {found}"
        )
    files: list[tuple[Path, int]] = []
    for index, folder in enumerate(folders):
        members = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not members:
            raise InvalidInput(f"label folder {folder.name!r} is empty; add images or remove it")
        files.extend((p, index) for p in members)
    return LabelledFiles(labels=[p.name for p in folders], files=files)


def read_image(path: Path, max_pixels: int) -> Image.Image:
    """Decode one training image, checked like an upload; ``InvalidInput`` says why not."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise InvalidInput("empty file")
        if size > MAX_FILE_BYTES:
            raise InvalidInput(f"file too large ({size:,} bytes)")
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise InvalidInput(f"unreadable: {exc.strerror or exc}") from None
    kind = _kind(head)
    if kind is None:
        raise InvalidInput(f"not an image (detected {_describe(head)})")
    try:
        with Image.open(path, formats=_PIL_FORMATS) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise InvalidInput(f"too many pixels ({width}×{height})")
            if min(width, height) < MIN_SIDE:
                raise InvalidInput(f"too small ({width}×{height}; at least {MIN_SIDE}×{MIN_SIDE})")
            im.seek(0)
            im.load()
            return normalise(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput("too many pixels") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"cannot be decoded as {kind}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"damaged or truncated: {exc}") from None


class FeatureCache:
    """Backbone features on disk, one ``.npy`` per image content hash."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        if self.root is None:
            return None
        try:
            return np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: np.ndarray) -> None:
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A cache: atomic, not durable (a lost entry is only computed again).
        with atomic_path(path, durable=False) as tmp, tmp.open("wb") as fh:
            np.save(fh, value.astype(np.float32), allow_pickle=False)


def prepare(
    data: LabelledFiles,
    method: str,
    *,
    max_pixels: int,
    cache_dir: Path | None = None,
    size: int = 32,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Prepared:
    """Decode every file into the method's input: pooled backbone features (``transfer``)
    or small normalised arrays (``cnn``). Unreadable files are skipped and listed."""
    backbone = load_backbone() if method == "transfer" else None
    cache = FeatureCache(
        cache_dir / f"{backbone.name}-{backbone.version}" if backbone and cache_dir else None
    )
    rows: list[np.ndarray | None] = []
    targets: list[int] = []
    skipped: list[tuple[str, str]] = []
    pending: list[tuple[int, str, np.ndarray]] = []  # (row, hash, imagenet array)

    def flush() -> None:
        if not pending:
            return
        assert backbone is not None
        feats = backbone.features(np.stack([a for _, _, a in pending]))
        for (row, key, _), feat in zip(pending, feats, strict=True):
            cache.put(key, feat)
            rows[row] = feat
        pending.clear()

    for path, label in tqdm(data.files, desc=f"reading images ({method})", unit="img",
                            disable=not progress, leave=False):
        try:
            if backbone is not None:
                key = hashlib.sha256(path.read_bytes()).hexdigest()
                hit = cache.get(key)
                if hit is not None:
                    rows.append(hit)
                    targets.append(label)
                    continue
                image = read_image(path, max_pixels)
                rows.append(None)
                targets.append(label)
                pending.append((len(rows) - 1, key, imagenet_array(image)))
                if len(pending) >= FEATURE_BATCH:
                    flush()
            else:
                rows.append(small_array(read_image(path, max_pixels), size))
                targets.append(label)
        except InvalidInput as exc:
            skipped.append((str(path), exc.message))
        except OSError as exc:
            skipped.append((str(path), f"unreadable: {exc.strerror or exc}"))
    flush()
    for path_s, reason in skipped:
        echo(f"skipped {path_s}: {reason}")
    y = np.asarray(targets, dtype=np.int64)
    counts = np.bincount(y, minlength=len(data.labels)) if len(y) else np.zeros(len(data.labels))
    for index, label in enumerate(data.labels):
        if counts[index] == 0:
            raise InvalidInput(f"label folder {label!r} has no readable images "
                               f"({sum(1 for _, i in data.files if i == index)} skipped)")
        if counts[index] < MIN_PER_CLASS:
            raise InvalidInput(f"label folder {label!r} has {int(counts[index])} readable "
                               f"image(s); at least {MIN_PER_CLASS} are needed "
                               "(train, validation and test)")
    x = np.stack([r for r in rows if r is not None]).astype(np.float32)
    return Prepared(x=x, y=y, labels=list(data.labels), skipped=skipped)


def stratified_split(
    y: np.ndarray, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test) with every label in each part (≥ 1 example each)."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n = len(idx)
        n_test = max(1, round(n * test_fraction))
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise InvalidInput(f"label {int(label)} has too few images to split ({n})")
        test.append(idx[:n_test])
        val.append(idx[n_test:n_test + n_val])
        train.append(idx[n_test + n_val:])
    return (rng.permutation(np.concatenate(train)), np.sort(np.concatenate(val)),
            np.sort(np.concatenate(test)))
