"""Custom classifiers on disk, per tenant:
``models/tenants/TENANT/image/NAME/vN/{model.pt, meta.json, history.png}`` under
``settings.trained_models_dir``, the folder every replica shares (``assistant.model_store``:
atomic versions, listing that skips broken ones, legacy folders moved in).

Each training run of a name writes a new version; the highest version is the one in use.
``meta.json`` holds the method, the label set, the input spec, the metrics and the history.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from assistant.errors import InvalidInput, ModelError, NotFound
from assistant.model_store import NAME_RE, Stamp, VersionedStore, check_name, tenant_root

from .backbone import FEATURE_DIM, load_backbone
from .networks import FeatureHead, SmallCNN
from .preprocess import imagenet_array, small_array

__all__ = ["NAME_RE", "CustomClassifier", "ImageModelStore", "build_net", "check_name",
           "image_models_dir"]


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


def image_models_dir(settings: Any, tenant: str) -> Path:
    """The folder of ``tenant``'s custom image models (legacy ones move to the default tenant)."""
    return tenant_root(settings, "image", tenant)


class ImageModelStore(VersionedStore):
    """One tenant's custom image classifiers (``image_models_dir``), with loaded ones cached.

    The cache is only a cache: every ``load`` lists the model's versions and stats the latest
    one's ``meta.json`` (``VersionedStore.stamp``), so a version trained, retrained or deleted
    by another process on the same (shared) folder is used, or refused, on the next call."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, weights="model.pt", label="custom image model")
        self._loaded: dict[str, tuple[tuple[int, Stamp], CustomClassifier]] = {}
        self._lock = threading.Lock()

    def list(self) -> list[dict[str, Any]]:
        return [{
            "name": name, "kind": "image", "version": f"v{versions[-1]}",
            "versions": len(versions), "method": meta.get("method"),
            "labels": meta.get("labels"),
            "test_accuracy": meta.get("metrics", {}).get("test_accuracy"),
            "created_at": meta.get("created_at"),
        } for name, versions, meta in self.entries()]

    def delete(self, name: str) -> int | None:
        removed = super().delete(name)
        with self._lock:
            self._loaded.pop(name, None)
        return removed

    def load(self, name: str) -> CustomClassifier:
        """The latest version of ``name``, loaded once and cached. An unknown name is
        ``NotFound`` naming only this store's (this tenant's) models."""
        version = self.latest(name)
        stamp = self.stamp(name, version) if version is not None else None
        if version is None or stamp is None:  # never trained, or deleted (maybe elsewhere)
            with self._lock:
                self._loaded.pop(name, None)
            available = ", ".join([n for n in self.names() if self.versions(n)][:10]) or "none"
            raise NotFound(f"no custom image model named {name!r} (available: {available})")
        key = (version, stamp)  # a retrained v1 is not the old v1: its meta.json is new
        with self._lock:  # the lookup only: loading one model holds up no other model's calls
            cached = self._loaded.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        meta = self.meta(name, version)
        try:
            labels = [str(x) for x in meta["labels"]]
            method = str(meta["method"])
            net = build_net(method, len(labels), int(meta.get("input", {}).get("size", 32)))
            state = torch.load(self.path(name, version) / "model.pt",
                               map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except (KeyError, OSError, RuntimeError, ValueError, InvalidInput) as exc:
            raise ModelError(f"custom image model {name!r} v{version} cannot be loaded: "
                             f"{exc}") from exc
        model = CustomClassifier(name=name, version=version, method=method, labels=labels,
                                 meta=meta, net=net.eval())
        with self._lock:  # two first calls may both load it: the first one stored is used
            current = self._loaded.get(name)
            if current is not None and current[0] == key:
                return current[1]
            self._loaded[name] = (key, model)  # one version per name: the old one is dropped
            return model
