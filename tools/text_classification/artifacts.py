"""Versioned text-classifier artifacts under ``settings.home/models/text/NAME/vN/``.

Each version holds ``weights.npz`` (a linear model over embeddings: ``coef``, ``intercept``)
and ``meta.json`` (classes, embedder, metrics, training data summary). No pickles: loading an
artifact never executes code. A version is written to a temporary folder and renamed into
place, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import InvalidInput, ModelError, NotFound
from tools.text_classification.language import shown

SENTIMENT = "sentiment"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^v(\d+)$")


def text_models_dir(settings: Any) -> Path:
    return Path(settings.home) / "models" / "text"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid model name {shown(name)}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            zh=f"模型名称 {shown(name)} 无效：请用 1-64 个字母、数字、'_'、'-' 或 '.'，"
               "并以字母或数字开头")
    return name


@dataclass
class LinearTextModel:
    """Logistic regression weights over normalised embeddings, plus their provenance."""

    name: str
    version: int
    classes: list[str]
    coef: np.ndarray  # (1, dim) for two classes, (n_classes, dim) otherwise
    intercept: np.ndarray
    meta: dict[str, Any]
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. the char n-gram part

    @property
    def embedder(self) -> str:
        return str(self.meta.get("embedder", ""))

    def predict_proba(self, vectors: np.ndarray,
                      texts: Sequence[str] | None = None) -> np.ndarray:
        """Class probabilities (columns in ``classes`` order). With ``texts`` and a stored
        character n-gram part, Chinese texts get the average of both models."""
        logits = vectors @ self.coef.T + self.intercept
        if len(self.classes) == 2 and self.coef.shape[0] == 1:
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            if texts is not None and "char_coef" in self.extras:
                p1 = self._with_char_model(p1, texts)
            return np.stack([1.0 - p1, p1], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def _with_char_model(self, p1: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        from tools.text_classification.char_ngrams import char_positive_proba
        from tools.text_classification.language import detect_language

        chinese = np.array([detect_language(t) == "zh" for t in texts], dtype=bool)
        if not chinese.any():
            return p1
        weight = float(self.meta.get("char_weight", 0.5))
        out = p1.copy()
        pc = char_positive_proba([t for t, z in zip(texts, chinese, strict=True) if z], self.extras)
        out[chinese] = (1.0 - weight) * p1[chinese] + weight * pc
        return out


def _versions(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir()
                  if p.is_dir() and (m := _VERSION.match(p.name)) and (p / "meta.json").is_file())


_write_lock = threading.Lock()


def save_model(settings: Any, name: str, classes: list[str], coef: np.ndarray,
               intercept: np.ndarray, meta: dict[str, Any],
               extras: dict[str, np.ndarray] | None = None) -> LinearTextModel:
    check_name(name)
    folder = text_models_dir(settings) / name
    folder.mkdir(parents=True, exist_ok=True)
    with _write_lock:
        version = (_versions(folder) or [0])[-1] + 1
        full_meta = {**meta, "name": name, "version": version, "classes": list(classes),
                     "created": datetime.now(UTC).isoformat(timespec="seconds"),
                     "format": "mentorly-text-linear/1"}
        tmp = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=folder))
        try:
            np.savez(tmp / "weights.npz", coef=coef.astype(np.float32),
                     intercept=intercept.astype(np.float32), **(extras or {}))
            (tmp / "meta.json").write_text(json.dumps(full_meta, ensure_ascii=False, indent=2),
                                           "utf-8")
            tmp.rename(folder / f"v{version}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return LinearTextModel(name, version, list(classes), coef, intercept, full_meta,
                           dict(extras or {}))


def latest_version(settings: Any, name: str) -> int | None:
    versions = _versions(text_models_dir(settings) / check_name(name))
    return versions[-1] if versions else None


def load_model(settings: Any, name: str, version: int | None = None) -> LinearTextModel:
    check_name(name)
    folder = text_models_dir(settings) / name
    version = version if version is not None else latest_version(settings, name)
    if version is None:
        raise NotFound(f"no text model named {name!r}; available: "
                       f"{', '.join(m['name'] for m in list_text_models(settings)) or 'none'}")
    path = folder / f"v{version}"
    try:
        meta = json.loads((path / "meta.json").read_text("utf-8"))
        with np.load(path / "weights.npz", allow_pickle=False) as data:
            coef, intercept = np.asarray(data["coef"]), np.asarray(data["intercept"])
            extras = {k: np.asarray(data[k]) for k in data.files if k not in ("coef", "intercept")}
        classes = [str(c) for c in meta["classes"]]
    except FileNotFoundError:
        raise NotFound(f"text model {name!r} has no version {version}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"text model {name!r} v{version} is corrupted: {exc}") from exc
    if coef.ndim != 2 or intercept.shape[0] != coef.shape[0]:
        raise ModelError(f"text model {name!r} v{version} has inconsistent weights")
    return LinearTextModel(name, version, classes, coef, intercept, meta, extras)


def list_text_models(settings: Any) -> list[dict[str, Any]]:
    """The latest version of every text model: name, version, versions, classes, metrics, …
    (for ``mentorly models list``)."""
    root = text_models_dir(settings)
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)):
        versions = _versions(folder)
        if not versions:
            continue
        try:
            meta = json.loads((folder / f"v{versions[-1]}" / "meta.json").read_text("utf-8"))
        except (OSError, ValueError):
            meta = {}
        out.append({"kind": "text", "name": folder.name, "version": versions[-1],
                    "versions": versions, "classes": meta.get("classes", []),
                    "metrics": meta.get("metrics", {}), "embedder": meta.get("embedder"),
                    "created": meta.get("created"), "path": str(folder / f"v{versions[-1]}")})
    return out


def delete_text_model(settings: Any, name: str) -> int:
    """Remove every version of a text model; returns how many were removed."""
    folder = text_models_dir(settings) / check_name(name)
    versions = _versions(folder)
    if not folder.is_dir():
        raise NotFound(f"no text model named {name!r}")
    shutil.rmtree(folder)
    return len(versions)
