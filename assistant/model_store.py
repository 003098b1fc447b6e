"""Versioned custom models, one tree per tenant: ``models/tenants/TENANT/KIND/NAME/vN/``.

The tree is under ``settings.trained_models_dir``, the folder every replica shares
(``shared_dir/models``; ``home/models`` when ``shared_dir`` is unset, where it always was).
The packaged, prepared models (the GGUF, the image backbone) stay in each replica's own
``models_dir``.

A version is written into a hidden folder beside its siblings (``NAME/.partial-…``), its files
flushed to disk, ``meta.json`` last, then renamed into place in one step: a crash never leaves
a folder ``vN`` that looks finished, and another replica reading the same folder sees the old
versions or the new one, never half of it. Listing skips versions it cannot read (with a
warning) instead of failing for every model. Hidden folders that a killed training left behind
are removed when a store opens, once older than ``STALE_AFTER_S``: a training only creates its
folder at the very end, to write for seconds, so an older one belongs to no live writer.

Nothing about the models on disk is remembered between calls but caches checked against a
``stat`` (``VersionedStore.stamp``): a version trained or deleted by another process (another
replica on the same shared folder) is seen on the next call.

Models from before tenancy (``models/KIND/NAME/``) belong to the default tenant: they move to
its tree, once, the first time a tenant's store of that kind is asked for in a process. When
``shared_dir`` is set, models trained before it was (``home/models/tenants/…``, the presets in
``home/models/KIND/``, see ``adopt_local``) move into the shared folder the same way, unless
the shared folder already has a model of that name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from assistant.errors import InvalidInput, ModelError
from knowledge.atomic import fsync_dir, fsync_file

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_RE = re.compile(r"^v(\d+)$")
_PLAIN_TENANT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TEMP = re.compile(r"^\.(partial-|v\d+-)")  # ours, and the text plugin's before this module
TEMP_PREFIX = ".partial-"
STALE_AFTER_S = 3600.0
META = "meta.json"
LEGACY_TENANT = "default"


def _shown(value: object, limit: int = 60) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_name(name: str) -> str:
    """``name`` if it is a valid model name (it becomes a folder), else ``InvalidInput``."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid model name {_shown(name)}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            zh=f"模型名称 {_shown(name)} 无效：请用 1-64 个字母、数字、'_'、'-' 或 '.'，"
               "并以字母或数字开头")
    return name


def tenant_dir(tenant: str) -> str:
    """The folder name of ``tenant``: the id itself when it is lower-case letters, digits,
    '_', '-' and '.' starting with a letter or digit; otherwise ``_`` and a hash of it, which
    no plain id can equal (so no path tricks, and no two ids share a folder on a disk that
    ignores case)."""
    if not isinstance(tenant, str) or not tenant:
        raise InvalidInput("a tenant id is required for custom models")
    if _PLAIN_TENANT.match(tenant):
        return tenant
    return "_" + hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:32]


def trained_root(settings: Any) -> Path:
    """Where trained models live: ``settings.trained_models_dir`` (the shared folder), or the
    ``models_dir`` of a settings object that has no such property (a plugin's stand-in)."""
    shared = getattr(settings, "trained_models_dir", None)
    return Path(shared if shared is not None else settings.models_dir)


def _local_differs(settings: Any) -> bool:
    """True when trained models are shared elsewhere than this replica's ``models_dir``."""
    local, shared = Path(settings.models_dir), trained_root(settings)
    try:
        return local.resolve() != shared.resolve()
    except OSError:
        return local != shared


def tenant_root(settings: Any, kind: str, tenant: str, *, keep: Iterable[str] = ()) -> Path:
    """Where ``tenant``'s models of ``kind`` live. Moves the legacy un-tenanted models of that
    kind to the default tenant first (once per process); ``keep`` names stay where they are
    (shared presets that belong to no tenant)."""
    folder = tenant_dir(tenant)
    migrate_legacy(settings, kind, keep=keep)
    return trained_root(settings) / "tenants" / folder / kind


def preset_root(settings: Any, kind: str, names: Iterable[str]) -> Path:
    """The folder of ``kind``'s presets (models of no tenant, e.g. the text ``sentiment``):
    ``trained_models_dir/KIND``. Presets a replica prepared in its own ``models_dir`` before
    ``shared_dir`` was set move there when the shared folder has none of that name."""
    root = trained_root(settings) / kind
    local = Path(settings.models_dir) / kind
    if _local_differs(settings) and _first_time(local, root):
        for name in names:
            if adopt_local(local / name, root / name):
                log.info("moved the %s preset %r from %s to the shared folder %s", kind, name,
                         local, root)
    return root


_migrated: set[tuple[Path, Path]] = set()
_migrate_lock = threading.Lock()


def _first_time(source: Path, target: Path) -> bool:
    """True the first time a process asks about this move (later calls cost nothing)."""
    with _migrate_lock:
        if (source, target) in _migrated:
            return False
        _migrated.add((source, target))
        return True


def migrate_legacy(settings: Any, kind: str, *, keep: Iterable[str] = ()) -> list[str]:
    """Move ``models/KIND/NAME/`` folders to the default tenant's tree, and, when
    ``shared_dir`` is set, this replica's ``home/models/tenants/*/KIND/NAME`` to the shared
    tree; returns the names moved. Each move is one rename (or a copy renamed into place
    across file systems), so replicas that migrate at once cannot split a model."""
    legacy = Path(settings.models_dir) / kind
    root = trained_root(settings)
    owner = getattr(settings, "default_tenant", None) or LEGACY_TENANT
    target = root / "tenants" / tenant_dir(owner) / kind
    moved: list[str] = []
    if _first_time(legacy, target) and legacy.is_dir():
        moved += _move_names(legacy, target, kind, skip=set(keep), owner=owner)
    local_tenants = Path(settings.models_dir) / "tenants"
    if _local_differs(settings) and _first_time(local_tenants / "*" / kind, root) \
            and local_tenants.is_dir():
        for tenant in sorted(local_tenants.iterdir()):
            if tenant.is_dir() and (tenant / kind).is_dir():
                moved += _move_names(tenant / kind, root / "tenants" / tenant.name / kind, kind,
                                     skip=set(), owner=tenant.name)
    return moved


def _move_names(source: Path, target: Path, kind: str, *, skip: set[str],
                owner: str) -> list[str]:
    moved = []
    for folder in sorted(source.iterdir()):
        if not folder.is_dir() or folder.name in skip or not NAME_RE.match(folder.name):
            continue
        if adopt_local(folder, target / folder.name):
            moved.append(folder.name)
    if moved:
        log.info("moved %d %s model(s) from %s to %s (tenant %r): %s", len(moved), kind, source,
                 target, owner, ", ".join(moved))
    return moved


def adopt_local(source: Path, destination: Path) -> bool:
    """Move the folder ``source`` to ``destination`` unless that already exists; True when
    moved. On one file system it is one rename; across file systems (a replica's home and the
    shared folder) the folder is copied into a hidden ``.partial-`` folder beside
    ``destination``, renamed into place, and only then removed from ``source``: a reader sees
    the whole model or none of it, and when two replicas move at once the first rename wins
    and the other copy is dropped (its source stays where it was, unused)."""
    if not source.is_dir():
        return False
    if destination.exists():
        log.warning("%s not moved: %s already exists", source, destination)
        return False
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.rename(destination)
        return True
    except FileNotFoundError:
        return False  # another process moved it first
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EEXIST, errno.ENOTEMPTY):
            log.warning("%s not moved to %s: %s", source, destination, exc)
            return False
        if exc.errno != errno.EXDEV:
            return False  # the destination appeared meanwhile
    copy = destination.parent / f"{TEMP_PREFIX}moving-{destination.name}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(source, copy)
        os.utime(copy)  # copytree copies the old mtime: clean_stale must not take it for stale
        for file in copy.rglob("*"):
            if file.is_file():
                fsync_file(file)
        copy.rename(destination)
    except OSError as exc:
        shutil.rmtree(copy, ignore_errors=True)
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            log.warning("%s not copied to %s: %s", source, destination, exc)
        return False
    fsync_dir(destination.parent)
    shutil.rmtree(source, ignore_errors=True)
    return True


@dataclass(frozen=True)
class Pending:
    """A version being written: put its files in ``path``, then ``VersionedStore.commit``."""

    name: str
    version: int
    path: Path


@dataclass(frozen=True)
class Saved:
    name: str
    version: int
    path: Path
    meta: dict[str, Any]


Stamp = tuple[int, int, int, int]


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


_stores: dict[tuple[type, Path], Any] = {}
_stores_lock = threading.Lock()


class VersionedStore:
    """The models under one root (one tenant, one kind): ``NAME/vN/{meta.json, WEIGHTS, …}``.
    A version counts when both ``meta.json`` (a JSON object) and the ``weights`` file are
    there; the highest such version is the one in use."""

    def __init__(self, root: Path, *, weights: str, label: str = "model",
                 stale_after_s: float = STALE_AFTER_S) -> None:
        self.root = Path(root)
        self.weights = weights
        self.label = label
        self._meta_cache: dict[Path, tuple[Stamp, dict[str, Any] | None]] = {}
        self._warned: set[tuple[Path, str]] = set()
        self._write_lock = threading.Lock()
        self.clean_stale(stale_after_s)

    @classmethod
    def open(cls, root: Path, **kwargs: Any) -> Self:
        """One store per root and class in a process, so caches (and the clean-up) are shared."""
        key = (cls, Path(root))
        with _stores_lock:
            store: Self | None = _stores.get(key)
            if store is None:
                store = _stores[key] = cls(Path(root), **kwargs)
            return store

    # -- reading ----------------------------------------------------------------------------

    def folder(self, name: str) -> Path:
        return self.root / check_name(name)

    def path(self, name: str, version: int) -> Path:
        return self.folder(name) / f"v{version}"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and NAME_RE.match(p.name) and ".." not in p.name)

    def _numbers(self, name: str) -> list[int]:
        folder = self.folder(name)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := VERSION_RE.match(p.name)))

    def _warn(self, path: Path, reason: str) -> None:
        if (path, reason) not in self._warned:
            self._warned.add((path, reason))
            log.warning("skipping %s version %s: %s", self.label, path, reason)

    def _read_meta(self, version_dir: Path) -> dict[str, Any] | None:
        """The parsed ``meta.json``, cached until the file changes; None (warned once) when a
        file is missing or unreadable."""
        path = version_dir / META
        try:
            st = path.stat()
        except OSError:
            self._warn(version_dir, f"no {META} (an interrupted save?)")
            return None
        stamp = _stamp(st)
        cached = self._meta_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data: dict[str, Any] | None
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            data = loaded if isinstance(loaded, dict) else None
            if data is None:
                self._warn(version_dir, f"{META} is not a JSON object")
        except (OSError, ValueError) as exc:
            self._warn(version_dir, f"unreadable {META}: {exc}")
            data = None
        if data is not None and not (version_dir / self.weights).is_file():
            self._warn(version_dir, f"no {self.weights}")
            data = None
        self._meta_cache[path] = (stamp, data)
        return data

    def stamp(self, name: str, version: int) -> Stamp | None:
        """What tells this version's files from any other that had the same name and number
        (a delete and a retrain, here or on another replica): the inode, modification time and
        size of its ``meta.json``, which a commit writes anew and renames into place. None
        when the version is gone. Loaded-model caches key on it: one ``stat`` per call."""
        try:
            return _stamp((self.path(name, version) / META).stat())
        except OSError:
            return None

    def versions(self, name: str) -> list[int]:
        """The complete, readable versions of ``name``, oldest first."""
        folder = self.folder(name)
        return [v for v in self._numbers(name) if self._read_meta(folder / f"v{v}") is not None]

    def latest(self, name: str) -> int | None:
        versions = self.versions(name)
        return versions[-1] if versions else None

    def meta(self, name: str, version: int) -> dict[str, Any]:
        data = self._read_meta(self.path(name, version))
        if data is None:
            raise ModelError(f"{self.label} {name!r} v{version} is missing or unreadable")
        return dict(data)

    def entries(self) -> list[tuple[str, list[int], dict[str, Any]]]:
        """``(name, versions, meta of the latest)`` for every model with a readable version;
        a model whose versions are all broken is left out (and warned about), not fatal."""
        out = []
        for name in self.names():
            versions = self.versions(name)
            if versions:
                out.append((name, versions, self.meta(name, versions[-1])))
        return out

    # -- writing ----------------------------------------------------------------------------

    def begin(self, name: str) -> Pending:
        """A hidden folder to write the next version of ``name`` into."""
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        version = max(self._numbers(name), default=0) + 1
        path = folder / f"{TEMP_PREFIX}v{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return Pending(name, version, path)

    def commit(self, pending: Pending, meta: dict[str, Any]) -> Saved:
        """Write ``meta.json`` (with the version), flush every file and rename the folder into
        place. If another writer took the number meanwhile, the next free one is used."""
        if not (pending.path / self.weights).is_file():
            raise ModelError(f"{self.label} {pending.name!r}: {self.weights} was not written")
        folder = self.folder(pending.name)
        version = pending.version
        with self._write_lock:
            while True:
                data = {**meta, "version": version}
                (pending.path / META).write_text(json.dumps(data, ensure_ascii=False, indent=2),
                                                 encoding="utf-8")
                for file in pending.path.iterdir():
                    if file.is_file():
                        fsync_file(file)
                fsync_dir(pending.path)
                target = folder / f"v{version}"
                try:
                    pending.path.rename(target)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    version = max([version, *self._numbers(pending.name)]) + 1
                    continue
                fsync_dir(folder)
                return Saved(pending.name, version, target, data)

    def abort(self, pending: Pending) -> None:
        shutil.rmtree(pending.path, ignore_errors=True)

    @contextmanager
    def writing(self, name: str) -> Iterator[Pending]:
        """``begin``; the hidden folder is removed on any exit that did not ``commit`` it."""
        pending = self.begin(name)
        try:
            yield pending
        finally:
            self.abort(pending)  # a no-op after commit: the folder was renamed

    def delete(self, name: str) -> int | None:
        """Remove every version of ``name`` (renamed away first, so readers never see half a
        model); returns how many complete versions it had, None if there was no such model."""
        folder = self.folder(name)
        if not folder.is_dir():
            return None
        count = len(self.versions(name))
        doomed = self.root / f"{TEMP_PREFIX}deleted-{name}-{uuid.uuid4().hex[:8]}"
        try:
            folder.rename(doomed)
        except FileNotFoundError:
            return None
        shutil.rmtree(doomed, ignore_errors=True)
        return count

    # -- housekeeping -----------------------------------------------------------------------

    def clean_stale(self, max_age_s: float = STALE_AFTER_S) -> list[Path]:
        """Remove hidden unfinished folders older than ``max_age_s``; returns them."""
        if not self.root.is_dir():
            return []
        now = time.time()
        candidates = [p for p in self.root.iterdir() if p.name.startswith(TEMP_PREFIX)]
        for folder in self.root.iterdir():
            if folder.is_dir() and NAME_RE.match(folder.name):
                candidates += [p for p in folder.iterdir() if _TEMP.match(p.name)]
        removed = []
        for path in candidates:
            try:
                if not path.is_dir() or now - path.stat().st_mtime <= max_age_s:
                    continue
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed %s, left by an interrupted save or delete", path)
            removed.append(path)
        return removed
