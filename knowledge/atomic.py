"""Atomic file writes: the one helper every file writer in Mentorly uses (``knowledge/``,
``assistant/`` and ``tools/`` alike; it lives here because ``knowledge`` is the lowest layer).

A reader, or a process that crashes halfway, sees the old file or the new one, never half of
one: the data goes to a hidden temporary file in the target's folder (a rename is atomic only
within one file system) and then renamed over the target. With ``durable=True`` (the default)
the file is fsynced before the rename and its folder after it, so that a power cut leaves the
old file or the new one too; caches, which a lost write only makes slower, pass ``False`` and
skip the two fsyncs. On any error the temporary file is removed and the target is untouched.

``atomic_path`` is for writers that want a path rather than bytes (``faiss.write_index``,
``np.save``, ``torch.save``): write to the path it yields. ``np.save``/``np.savez`` append
``.npy``/``.npz`` to a path without that suffix, so pass ``suffix=".npy"`` (or write to an open
file instead). Folder-level renames (a model version's folder) are not this helper's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PUBLIC = 0o666  # less the umask: what ``open(path, "w")`` would create
_PRIVATE = 0o600  # owner only: tenant data (uploads, indexes, caches)


def fsync_file(path: Path | str) -> None:
    """Flush ``path``'s content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path | str) -> None:
    """Flush ``folder``'s entries (a rename or a new file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str, *, suffix: str = ".tmp", durable: bool = True,
                private: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a normal exit, whatever was written there
    is renamed over ``path`` (fsynced first if ``durable``); on an exception it is removed.
    ``private`` creates the file readable by its owner only."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{suffix}")
    # Created here, empty and exclusively, so the name is ours and the mode is set.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE if private else _PUBLIC))
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def atomic_write_bytes(path: Path | str, data: bytes, *, durable: bool = True,
                       private: bool = False) -> None:
    """Replace ``path``'s content with ``data`` atomically (see the module docstring)."""
    with atomic_path(path, durable=durable, private=private) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: Path | str, text: str, *, encoding: str = "utf-8", durable: bool = True,
                      private: bool = False) -> None:
    """Replace ``path``'s content with ``text`` atomically (see the module docstring)."""
    atomic_write_bytes(path, text.encode(encoding), durable=durable, private=private)
