"""Custom image classifiers trained on scikit-learn's digits (written as PNG folders), both
methods, the CLI command, the model store hooks, and every bad training folder of issue 4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import tools.image_classification as plugin
from assistant.config import load_settings
from assistant.errors import InvalidInput, NotFound
from assistant.plugins import load_registry
from assistant.tooling import ToolContext
from assistant.uploads import UploadStore
from tools.image_classification.custom_models import ImageModelStore, image_models_dir
from tools.image_classification.dataset import stratified_split
from tools.image_classification.training import train_image_classifier

PER_CLASS = 20
TENANT = "t"


def _digit_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray((pixels * 255.0 / 16.0).astype(np.uint8), mode="L")


def write_digits(root: Path, per_class: int, classes: range = range(10), offset: int = 0
                 ) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in classes:
        folder = root / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(digits.target == label)[offset:offset + per_class]:
            _digit_image(digits.images[i]).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits"), PER_CLASS)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def transfer_report(digits_dir: Path, home: Path) -> object:
    lines: list[str] = []
    report = train_image_classifier(
        digits_dir, "digits", models_root=image_models_dir(load_settings(home=home), TENANT),
        method="transfer",
        cache_dir=home / "cache", progress=False, echo=lines.append)
    report.lines = lines  # type: ignore[attr-defined]
    return report


def test_transfer_learns_digits(transfer_report: object) -> None:
    report = transfer_report
    assert report.method == "transfer" and report.version == 1  # type: ignore[attr-defined]
    metrics = report.metrics  # type: ignore[attr-defined]
    assert metrics["test_accuracy"] >= 0.7, metrics  # chance is 0.1
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == metrics["n_test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test_accuracy"])
    lines = report.lines  # type: ignore[attr-defined]
    epoch_lines = [x for x in lines if " - loss: " in x]
    assert epoch_lines and all(
        all(k in x for k in ("accuracy: ", "val_loss: ", "val_accuracy: ")) for x in epoch_lines)
    assert any(x.startswith("Test accuracy: ") for x in lines)
    assert any("Confusion matrix" in x for x in lines)


def test_artifact_is_versioned_with_metrics_labels_and_plot(transfer_report: object) -> None:
    path: Path = transfer_report.path  # type: ignore[attr-defined]
    assert path.name == "v1" and (path / "model.pt").is_file()
    meta = json.loads((path / "meta.json").read_text())
    assert meta["labels"] == [f"digit_{i}" for i in range(10)]
    assert meta["method"] == "transfer" and meta["metrics"]["test_accuracy"] >= 0.7
    assert len(meta["history"]) == meta["metrics"]["epochs_run"]
    plot = transfer_report.plot_path  # type: ignore[attr-defined]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(plot) as im:
        assert im.size[0] > 300


def test_features_are_cached(transfer_report: object, digits_dir: Path, home: Path) -> None:
    cached = list((home / "cache").rglob("*.npy"))
    assert len(cached) == 10 * PER_CLASS
    again = train_image_classifier(
        digits_dir, "digits-again", models_root=image_models_dir(load_settings(home=home), TENANT),
        method="transfer",
        epochs=2, cache_dir=home / "cache", progress=False, echo=lambda _: None)
    assert again.version == 1 and again.metrics["epochs_run"] <= 2
    assert len(list((home / "cache").rglob("*.npy"))) == 10 * PER_CLASS


def test_cnn_learns_digits(digits_dir: Path, tmp_path: Path) -> None:
    plot = tmp_path / "curves.png"
    report = train_image_classifier(
        digits_dir, "digits-cnn", models_root=tmp_path / "models", method="cnn", epochs=15,
        plot=plot, progress=False, echo=lambda _: None)
    assert report.metrics["test_accuracy"] >= 0.5, report.metrics
    assert plot.is_file() and (report.path / "history.png").is_file()
    assert len(report.history) <= 15


def test_custom_model_through_the_tool(transfer_report: object, home: Path,
                                       tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # digits the model never saw (beyond the first PER_CLASS of each label)
    store = UploadStore(tmp_path / "uploads", 1_000_000, 1_000_000)
    settings = load_settings(home=home)
    tool = load_registry(["tools.image_classification"]).get("classify_image")
    correct = 0
    for label in range(10):
        index = np.flatnonzero(digits.target == label)[PER_CLASS + 5]
        path = tmp_path / f"{label}.png"
        _digit_image(digits.images[index]).save(path)
        upload = store.save_path(path, tenant=TENANT)
        result = tool.invoke({"model": "digits", "top_k": 3},
                             ToolContext(tenant=TENANT, user="u", files=[upload], settings=settings))
        assert result.model == "custom:digits" and result.model_version == "v1"
        assert len(result.data["labels"]) == 3
        correct += result.data["labels"][0]["label"] == f"digit_{label}"
    assert correct >= 6


def test_models_list_and_delete_hooks(transfer_report: object, home: Path) -> None:
    settings = load_settings(home=home)
    listed = {m["name"]: m for m in plugin.list_models(settings, TENANT)}
    assert listed["digits"]["kind"] == "image" and listed["digits"]["versions"] >= 1
    assert listed["digits"]["method"] == "transfer"
    store = ImageModelStore(image_models_dir(settings, TENANT))
    assert store.load("digits").labels[0] == "digit_0"
    assert plugin.delete_model(settings, "no-such-model", TENANT) is False
    assert plugin.delete_model(settings, "../etc", TENANT) is False


def test_delete_removes_every_version(digits_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    root = image_models_dir(settings, TENANT)
    for _ in range(2):
        train_image_classifier(digits_dir, "tmp-model", models_root=root, method="cnn",
                               epochs=1, progress=False, echo=lambda _: None)
    listed = plugin.list_models(settings, TENANT)
    assert [(m["name"], m["version"], m["versions"]) for m in listed] == [("tmp-model", "v2", 2)]
    assert ImageModelStore(root).load("tmp-model").version == 2
    assert plugin.delete_model(settings, "tmp-model", TENANT) is True
    assert plugin.list_models(settings, TENANT) == []
    with pytest.raises(NotFound):
        ImageModelStore(root).load("tmp-model")


def test_cli_train_image_command(digits_dir: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.config import get_settings
    from mentorly_app import cli as cli_module

    monkeypatch.setenv("MENTORLY_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    plugin.register_commands(cli_module.cli)
    try:
        runner = CliRunner()
        ok = runner.invoke(cli_module.cli, ["train", "image", str(digits_dir), "--name", "cli",
                                            "--method", "cnn", "--epochs", "2", "--quiet"])
        assert ok.exit_code == 0, ok.output
        assert "Epoch 2/2" in ok.output and "val_accuracy: " in ok.output
        assert "Test accuracy: " in ok.output
        tree = tmp_path / "home" / "models" / "tenants"
        assert (tree / "default" / "image" / "cli" / "v1" / "meta.json").is_file()
        bad = runner.invoke(cli_module.cli, ["train", "image", str(tmp_path / "nowhere"),
                                             "--name", "cli"])
        assert bad.exit_code == 1
        assert "training data folder not found" in bad.output
    finally:
        get_settings.cache_clear()


# ---- bad training folders -------------------------------------------------------------------


def _train(data: Path, tmp_path: Path, method: str = "cnn") -> object:
    return train_image_classifier(data, "bad", models_root=tmp_path / "models", method=method,
                                  epochs=1, progress=False, echo=lambda _: None)


def test_one_class_is_refused(tmp_path: Path) -> None:
    data = write_digits(tmp_path / "data", 5, classes=range(1))
    with pytest.raises(InvalidInput, match="at least two labels; found 'digit_0'"):
        _train(data, tmp_path)


def test_empty_class_is_refused(tmp_path: Path) -> None:
    data = write_digits(tmp_path / "data", 5, classes=range(2))
    (data / "digit_9").mkdir()
    with pytest.raises(InvalidInput, match="label folder 'digit_9' is empty"):
        _train(data, tmp_path)


def test_missing_folder_and_bad_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        _train(tmp_path / "nope", tmp_path)
    data = write_digits(tmp_path / "data", 5, classes=range(2))
    with pytest.raises(InvalidInput, match="invalid model name"):
        train_image_classifier(data, "../escape", models_root=tmp_path / "m", progress=False,
                               echo=lambda _: None)
    with pytest.raises(InvalidInput, match="unknown training method"):
        train_image_classifier(data, "ok", models_root=tmp_path / "m", method="svm",
                               progress=False, echo=lambda _: None)


def test_unreadable_files_are_skipped_and_reported(tmp_path: Path) -> None:
    data = write_digits(tmp_path / "data", 6, classes=range(3))
    folder = data / "digit_1"
    (folder / "notes.png").write_text("this is not an image\n")
    (folder / "empty.png").write_bytes(b"")
    good = (folder / next(p.name for p in folder.iterdir() if p.suffix == ".png"
                          and p.stat().st_size > 0)).read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    lines: list[str] = []
    report = train_image_classifier(data, "skips", models_root=tmp_path / "models",
                                    method="cnn", epochs=1, progress=False, echo=lines.append)
    reasons = {Path(f).name: r for f, r in report.skipped}
    assert set(reasons) == {"notes.png", "empty.png", "cut.png", "dot.png"}
    assert "detected text/plain" in reasons["notes.png"]
    assert "empty" in reasons["empty.png"]
    assert "truncated" in reasons["cut.png"] or "damaged" in reasons["cut.png"]
    assert "too small" in reasons["dot.png"]
    assert sum("skipped" in x for x in lines) >= 4
    assert report.metrics["n_skipped"] == 4
    assert report.metrics["n_train"] + report.metrics["n_val"] + report.metrics["n_test"] == 18


def test_class_with_only_unreadable_files_is_refused(tmp_path: Path) -> None:
    data = write_digits(tmp_path / "data", 5, classes=range(2))
    broken = data / "broken"
    broken.mkdir()
    for i in range(3):
        (broken / f"{i}.jpg").write_text("plain text")
    with pytest.raises(InvalidInput, match="'broken' has no readable images"):
        _train(data, tmp_path)


def test_class_too_small_to_split(tmp_path: Path) -> None:
    data = write_digits(tmp_path / "data", 5, classes=range(2))
    write_digits(data, 2, classes=range(2, 3))
    with pytest.raises(InvalidInput, match="at least 3 are needed"):
        _train(data, tmp_path)


def test_stratified_split_keeps_every_label_everywhere() -> None:
    y = np.repeat(np.arange(4), [3, 10, 40, 7])
    train, val, test = stratified_split(y, seed=1)
    assert len(set(train) | set(val) | set(test)) == len(y)
    assert not (set(train) & set(val)) and not (set(val) & set(test))
    for part in (train, val, test):
        assert set(y[part]) == {0, 1, 2, 3}
    assert abs(len(test) - 0.15 * len(y)) <= 4
