"""The shared atomic-write helper (``knowledge.atomic``): all or nothing, no temporary left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from knowledge.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_write_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    atomic_write_text(target, "old")
    atomic_write_bytes(target, b"new", durable=False)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(target) == 0o666 & ~umask  # what a plain open() would create


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "index.faiss"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half of the n")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.faiss"]


def test_a_path_for_writers_that_want_one_and_private_files(tmp_path: Path) -> None:
    target = tmp_path / "vectors.npy"
    with atomic_path(target, suffix=".npy", private=True) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".vectors.npy.") and tmp.suffix == ".npy"
        np.save(tmp, np.arange(3), allow_pickle=False)  # keeps the name: it ends in .npy
    assert np.load(target).tolist() == [0, 1, 2]
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.npy"]
