"""Training custom image classifiers: a Keras-like ``fit`` loop, early stopping, a plot of the
curves, test accuracy and a confusion matrix, and a versioned artifact.

``transfer`` fits a linear head on the pretrained backbone's pooled features (cached);
``cnn`` fits a small convolutional network from scratch on 32×32 inputs.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from assistant.errors import InvalidInput

from .backbone import MODEL_NAME, weights_version
from .custom_models import ImageModelStore, build_net, check_name
from .dataset import prepare, scan_folder, stratified_split
from .methods import METHODS
from .networks import FeatureHead


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int
    lr: float
    patience: int
    weight_decay: float = 0.0


DEFAULTS: dict[str, FitConfig] = {
    "transfer": FitConfig(epochs=60, batch_size=64, lr=1e-3, patience=8, weight_decay=1e-3),
    "cnn": FitConfig(epochs=30, batch_size=32, lr=1e-3, patience=5),
}


@dataclass
class TrainReport:
    name: str
    version: int
    method: str
    path: Path
    labels: list[str]
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    plot_path: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256
              ) -> tuple[float, float, np.ndarray]:
    net.eval()
    losses: list[torch.Tensor] = []
    preds: list[torch.Tensor] = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            logits = net(x[i:i + batch])
            losses.append(F.cross_entropy(logits, y[i:i + batch], reduction="sum"))
            preds.append(logits.argmax(1))
    pred = torch.cat(preds)
    return (float(torch.stack(losses).sum()) / len(x), float((pred == y).float().mean()),
            pred.numpy())


def fit(
    net: nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    config: FitConfig,
    *,
    echo: Callable[[str], None] = print,
    time_budget_s: float | None = None,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Mini-batch Adam with per-epoch Keras-style lines; stops early when ``val_loss`` has not
    improved for ``patience`` epochs (or the time budget is spent) and restores the best weights."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    x_val, y_val = torch.from_numpy(val[0]), torch.from_numpy(val[1])
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = math.ceil(len(x_train) / config.batch_size)
    best_loss, best_epoch, wait = math.inf, 0, 0
    best_state = copy.deepcopy(net.state_dict())
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss, correct = 0.0, 0
        for step in range(steps):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += loss.detach().item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        val_loss, val_acc, _ = _evaluate(net, x_val, y_val)
        row = {"epoch": epoch, "loss": total_loss / len(x_train),
               "accuracy": correct / len(x_train), "val_loss": val_loss,
               "val_accuracy": val_acc, "seconds": time.perf_counter() - t0}
        history.append(row)
        echo(f"Epoch {epoch}/{config.epochs}")
        echo(f"{steps}/{steps} - {row['seconds']:.1f}s - loss: {row['loss']:.4f} - accuracy: "
             f"{row['accuracy']:.4f} - val_loss: {val_loss:.4f} - val_accuracy: {val_acc:.4f}")
        if val_loss < best_loss - 1e-4:
            best_loss, best_epoch, wait = val_loss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            wait += 1
            if wait >= config.patience:
                echo(f"Early stopping: val_loss has not improved for {config.patience} epochs; "
                     f"restoring the weights of epoch {best_epoch} (val_loss {best_loss:.4f})")
                break
        if time_budget_s is not None and time.perf_counter() - started >= time_budget_s:
            echo(f"Time budget of {time_budget_s:.1f}s reached; restoring the weights of "
                 f"epoch {best_epoch}")
            break
    net.load_state_dict(best_state)
    return history


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def format_confusion(matrix: np.ndarray, labels: list[str]) -> str:
    names = [label[:12] for label in labels]
    width = max(6, *(len(n) for n in names), len(str(int(matrix.max(initial=0)))))
    lines = ["true \\ predicted".ljust(width + 2) + " ".join(n.rjust(width) for n in names)]
    for name, row in zip(names, matrix, strict=True):
        lines.append(name.ljust(width + 2) + " ".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def plot_history(history: list[dict[str, float]], path: Path, title: str) -> Path:
    """Loss and accuracy curves (train and validation) as a PNG; no global pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for ax, key, label in ((fig.add_subplot(1, 2, 1), "loss", "loss"),
                           (fig.add_subplot(1, 2, 2), "accuracy", "accuracy")):
        ax.plot(epochs, [h[key] for h in history], marker="o", label=f"train {label}")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", label=f"val {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def train_image_classifier(
    data_dir: Path,
    name: str,
    *,
    models_root: Path,
    method: str = "transfer",
    epochs: int | None = None,
    plot: Path | None = None,
    cache_dir: Path | None = None,
    max_pixels: int = 40_000_000,
    seed: int = 0,
    time_budget_s: float | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> TrainReport:
    """Train, evaluate and save ``name`` (a new version) from ``data_dir/<label>/*`` into
    ``models_root``, one tenant's folder (``custom_models.image_models_dir``)."""
    if method not in METHODS:
        raise InvalidInput(f"unknown training method {method!r}; use 'transfer' or 'cnn'")
    check_name(name)
    if epochs is not None and epochs < 1:
        raise InvalidInput("epochs must be at least 1")
    torch.set_num_threads(1)
    started = time.perf_counter()
    files = scan_folder(data_dir)
    echo(f"Found {len(files.files)} files in {len(files.labels)} labels: "
         f"{', '.join(files.labels)}")
    size = 32
    data = prepare(files, method, max_pixels=max_pixels, cache_dir=cache_dir, size=size,
                   progress=progress, echo=echo)
    train_idx, val_idx, test_idx = stratified_split(data.y, seed=seed)
    echo(f"Split: {len(train_idx)} train, {len(val_idx)} validation, {len(test_idx)} test "
         f"({len(data.skipped)} skipped)")
    config = DEFAULTS[method]
    if epochs is not None:
        config = FitConfig(epochs, config.batch_size, config.lr, config.patience,
                           config.weight_decay)
    torch.manual_seed(seed)
    net = build_net(method, len(data.labels), size)
    x_train = data.x[train_idx]
    if isinstance(net, FeatureHead):
        net.set_standardisation(torch.from_numpy(x_train))
    remaining = None if time_budget_s is None else max(0.0, time_budget_s - (
        time.perf_counter() - started))
    history = fit(net, (x_train, data.y[train_idx]), (data.x[val_idx], data.y[val_idx]), config,
                  echo=echo, time_budget_s=remaining, seed=seed)
    test_loss, test_acc, pred = _evaluate(net, torch.from_numpy(data.x[test_idx]),
                                          torch.from_numpy(data.y[test_idx]))
    matrix = confusion_matrix(data.y[test_idx], pred, len(data.labels))
    train_time = time.perf_counter() - started
    echo(f"Test accuracy: {test_acc:.4f} (loss {test_loss:.4f}) on {len(test_idx)} images")
    echo("Confusion matrix (rows: true label, columns: predicted):")
    echo(format_confusion(matrix, data.labels))

    store = ImageModelStore.open(models_root)
    with store.writing(name) as pending:
        version, directory = pending.version, pending.path
        torch.save(net.state_dict(), directory / "model.pt")
        title = f"{name} v{version} ({method})"
        plot_history(history, directory / "history.png", title)
        if plot is not None:
            plot_history(history, plot, title)
        metrics = {
            "test_accuracy": test_acc, "test_loss": test_loss,
            "best_val_accuracy": max(h["val_accuracy"] for h in history),
            "confusion_matrix": matrix.tolist(), "epochs_run": len(history),
            "train_time_s": round(train_time, 3), "n_train": int(len(train_idx)),
            "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
            "n_skipped": len(data.skipped),
        }
        meta = {
            "name": name, "version": version, "method": method, "labels": data.labels,
            "input": ({"kind": "backbone_features", "backbone": MODEL_NAME,
                       "backbone_version": weights_version(), "size": 224}
                      if method == "transfer" else {"kind": "rgb", "size": size, "range": [-1, 1]}),
            "metrics": metrics, "history": history,
            "skipped": [{"file": f, "reason": r} for f, r in data.skipped],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_dir": str(Path(data_dir).resolve()),
        }
        saved = store.commit(pending, meta)  # meta.json last, then one rename: never half a model
    version, directory = saved.version, saved.path
    plot_path = plot if plot is not None else directory / "history.png"
    echo(f"Saved {name} v{version} to {directory} (plot: {plot_path})")
    return TrainReport(name=name, version=version, method=method, path=directory,
                       labels=data.labels, metrics=metrics, history=history,
                       plot_path=plot_path, skipped=data.skipped)
