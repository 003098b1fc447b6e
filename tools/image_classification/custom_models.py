"""Custom classifiers on disk: ``models/image/NAME/vN/{model.pt, meta.json, history.png}``.

Each training run of a name writes a new version; the highest version is the one in use.
``meta.json`` holds the method, the label set, the input spec, the metrics and the history.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from assistant.errors import InvalidInput, ModelError, NotFound

from .backbone import FEATURE_DIM, load_backbone
from .networks import FeatureHead, SmallCNN
from .preprocess import imagenet_array, small_array

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION_RE = re.compile(r"^v(\d+)$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid model name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class CustomClassifier:
    """A loaded custom model: images in, class probabilities out."""

    name: str
    version: int
    method: str
    labels: list[str]
    meta: dict[str, Any]
    net: torch.nn.Module

    @property
    def version_label(self) -> str:
        return f"v{self.version}"

    def predict_proba(self, images: list[Image.Image]) -> np.ndarray:
        """Normalised RGB images → (N, n_labels) probabilities."""
        with torch.inference_mode():
            if self.method == "transfer":
                batch = np.stack([imagenet_array(im) for im in images])
                feats = torch.from_numpy(load_backbone().features(batch))
                logits = self.net(feats)
            else:
                size = int(self.meta["input"]["size"])
                batch = np.stack([small_array(im, size) for im in images])
                logits = self.net(torch.from_numpy(batch))
            return torch.softmax(logits, dim=1).numpy()


def build_net(method: str, n_classes: int, size: int = 32) -> torch.nn.Module:
    if method == "transfer":
        return FeatureHead(FEATURE_DIM, n_classes)
    if method == "cnn":
        return SmallCNN(n_classes, size=size)
    raise InvalidInput(f"unknown training method {method!r}; use 'transfer' or 'cnn'")


class ImageModelStore:
    """The versioned artifacts under one root (``settings.models_dir / 'image'``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._loaded: dict[tuple[str, int], CustomClassifier] = {}
        self._lock = threading.Lock()

    def versions(self, name: str) -> list[int]:
        directory = self.root / check_name(name)
        if not directory.is_dir():
            return []
        found = [int(m.group(1)) for p in directory.iterdir()
                 if (m := _VERSION_RE.match(p.name)) and (p / "meta.json").is_file()]
        return sorted(found)

    def new_version_dir(self, name: str) -> tuple[int, Path]:
        directory = self.root / check_name(name)
        taken = [int(m.group(1)) for p in directory.glob("v*") if (m := _VERSION_RE.match(p.name))]
        version = max(taken, default=0) + 1
        path = directory / f"v{version}"
        path.mkdir(parents=True, exist_ok=False)
        return version, path

    def list(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return items
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if not NAME_RE.match(directory.name):
                continue
            versions = self.versions(directory.name)
            if not versions:
                continue
            meta = self.meta(directory.name, versions[-1])
            items.append({
                "name": directory.name, "kind": "image", "version": f"v{versions[-1]}",
                "versions": len(versions), "method": meta.get("method"),
                "labels": meta.get("labels"),
                "test_accuracy": meta.get("metrics", {}).get("test_accuracy"),
                "created_at": meta.get("created_at"),
            })
        return items

    def meta(self, name: str, version: int) -> dict[str, Any]:
        path = self.root / check_name(name) / f"v{version}" / "meta.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"custom image model {name!r} v{version} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError(f"custom image model {name!r} v{version}: meta.json is not an object")
        return data

    def delete(self, name: str) -> bool:
        directory = self.root / check_name(name)
        if not directory.is_dir():
            return False
        shutil.rmtree(directory)
        with self._lock:
            for key in [k for k in self._loaded if k[0] == name]:
                del self._loaded[key]
        return True

    def load(self, name: str) -> CustomClassifier:
        """The latest version of ``name``, loaded once and cached."""
        versions = self.versions(name)
        if not versions:
            available = ", ".join(m["name"] for m in self.list()) or "none"
            raise NotFound(f"no custom image model named {name!r} (available: {available})")
        version = versions[-1]
        with self._lock:
            cached = self._loaded.get((name, version))
            if cached is not None:
                return cached
            meta = self.meta(name, version)
            try:
                labels = [str(x) for x in meta["labels"]]
                method = str(meta["method"])
                net = build_net(method, len(labels), int(meta.get("input", {}).get("size", 32)))
                state = torch.load(self.root / name / f"v{version}" / "model.pt",
                                   map_location="cpu", weights_only=True)
                net.load_state_dict(state)
            except (KeyError, OSError, RuntimeError, ValueError, InvalidInput) as exc:
                raise ModelError(f"custom image model {name!r} v{version} cannot be loaded: "
                                 f"{exc}") from exc
            model = CustomClassifier(name=name, version=version, method=method, labels=labels,
                                     meta=meta, net=net.eval())
            self._loaded[(name, version)] = model
            return model
