"""Versioned text-classifier artifacts: a tenant's custom models under
``models/tenants/TENANT/text/NAME/vN/``, the shared presets (``sentiment``, built from public
reviews, used by every tenant) under ``models/text/NAME/vN/``, both in
``settings.trained_models_dir`` (the folder every replica shares; ``home/models`` without
``shared_dir``, as before).

The presets are trained per installation (``mentorly models prepare``, ``mentorly train text
--preset``, with a size or embedder the operator chose), so they are shared like the tenants'
models: every replica answers with the same version. A preset a replica prepared in its own
``home/models/text`` before ``shared_dir`` was set moves into the shared folder the first time
it is needed, if the shared folder has none yet (``assistant.model_store.preset_root``); an
extra local copy on another replica is then left unused (with a warning).

Each version holds ``weights.npz`` (a linear model over embeddings: ``coef``, ``intercept``)
and ``meta.json`` (classes, embedder, metrics, training data summary). No pickles: loading an
artifact never executes code. Versions are written by ``assistant.model_store`` (a hidden
folder renamed into place, so a crash never leaves half a model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import InvalidInput, ModelError, NotFound
from assistant.model_store import VersionedStore, check_name, preset_root, tenant_root

SENTIMENT = "sentiment"
SHARED = frozenset({SENTIMENT})
"""Preset names: one shared model each, no tenant's (and no tenant may train one)."""
WEIGHTS = "weights.npz"

__all__ = ["SENTIMENT", "SHARED", "LinearTextModel", "check_name", "delete_text_model",
           "latest_version", "list_text_models", "load_model", "model_path", "save_model",
           "text_models_dir"]


def text_models_dir(settings: Any, tenant: str | None = None) -> Path:
    """``tenant``'s folder of custom text models; with no tenant, the shared presets' folder."""
    if tenant is None:
        return preset_root(settings, "text", SHARED)
    return tenant_root(settings, "text", tenant, keep=SHARED)


def _store(settings: Any, name: str, tenant: str | None) -> VersionedStore:
    """Where ``name`` lives for ``tenant``: a preset in the shared folder, anything else in the
    tenant's own (a tenant is then required)."""
    check_name(name)
    if name not in SHARED and tenant is None:
        raise InvalidInput(f"text model {name!r}: a tenant is required for custom models")
    root = text_models_dir(settings, None if name in SHARED else tenant)
    return VersionedStore.open(root, weights=WEIGHTS, label="text model")


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
        from .char_ngrams import char_positive_proba
        from .language import detect_language

        chinese = np.array([detect_language(t) == "zh" for t in texts], dtype=bool)
        if not chinese.any():
            return p1
        weight = float(self.meta.get("char_weight", 0.5))
        out = p1.copy()
        pc = char_positive_proba([t for t, z in zip(texts, chinese, strict=True) if z], self.extras)
        out[chinese] = (1.0 - weight) * p1[chinese] + weight * pc
        return out


def save_model(settings: Any, name: str, classes: list[str], coef: np.ndarray,
               intercept: np.ndarray, meta: dict[str, Any],
               extras: dict[str, np.ndarray] | None = None, *,
               tenant: str | None = None) -> LinearTextModel:
    """Save a new version of ``tenant``'s model ``name`` (no tenant: a shared preset)."""
    if name in SHARED and tenant is not None:
        raise InvalidInput(f"{name!r} is reserved for the shared preset: choose another name",
                           zh=f"{name!r} 是共享预置模型的名称，请换一个名称")
    store = _store(settings, name, tenant)
    full_meta = {**meta, "name": name, "classes": list(classes),
                 "created": datetime.now(UTC).isoformat(timespec="seconds"),
                 "format": "mentorly-text-linear/1"}
    with store.writing(name) as pending:
        np.savez(pending.path / WEIGHTS, coef=coef.astype(np.float32),
                 intercept=intercept.astype(np.float32), **(extras or {}))
        saved = store.commit(pending, full_meta)
    return LinearTextModel(name, saved.version, list(classes), coef, intercept, saved.meta,
                           dict(extras or {}))


def latest_version(settings: Any, name: str, *, tenant: str | None = None) -> int | None:
    return _store(settings, name, tenant).latest(name)


def model_path(settings: Any, name: str, version: int, *, tenant: str | None = None) -> Path:
    return _store(settings, name, tenant).path(name, version)


def load_model(settings: Any, name: str, version: int | None = None, *,
               tenant: str | None = None) -> LinearTextModel:
    """A version (default: the latest) of ``tenant``'s model ``name``, or of a shared preset.
    ``NotFound`` names only this tenant's models."""
    store = _store(settings, name, tenant)
    versions = store.versions(name)
    if version is None and not versions:
        available = [m["name"] for m in list_text_models(settings, tenant)] if tenant else []
        raise NotFound(f"no text model named {name!r}; available: "
                       f"{', '.join(available) or 'none'}")
    version = version if version is not None else versions[-1]
    if version not in versions:
        raise NotFound(f"text model {name!r} has no version {version}")
    path = store.path(name, version)
    try:
        meta = store.meta(name, version)
        with np.load(path / WEIGHTS, allow_pickle=False) as data:
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


def list_text_models(settings: Any, tenant: str) -> list[dict[str, Any]]:
    """The latest version of the shared presets and of ``tenant``'s own text models: name,
    version, versions, classes, metrics, … (for ``mentorly models list``). Versions that
    cannot be read are skipped with a warning."""
    own = VersionedStore.open(text_models_dir(settings, tenant), weights=WEIGHTS,
                              label="text model")
    found = [(_store(settings, name, None), name, True) for name in sorted(SHARED)]
    found += [(own, name, False) for name in own.names() if name not in SHARED]
    out: list[dict[str, Any]] = []
    for store, name, shared in found:
        versions = store.versions(name)
        if not versions:
            continue
        meta = store.meta(name, versions[-1])
        out.append({"kind": "text", "name": name, "version": versions[-1],
                    "versions": versions, "classes": meta.get("classes", []),
                    "metrics": meta.get("metrics", {}), "embedder": meta.get("embedder"),
                    "created": meta.get("created"), "shared": shared,
                    "path": str(store.path(name, versions[-1]))})
    return out


def delete_text_model(settings: Any, name: str, tenant: str) -> int:
    """Remove every version of ``tenant``'s text model; returns how many were removed.
    Shared presets are no tenant's to delete."""
    if check_name(name) in SHARED:
        raise InvalidInput(f"{name!r} is a shared preset, not a tenant's model "
                           "(`mentorly models prepare` rebuilds it)")
    removed = _store(settings, name, tenant).delete(name)
    if removed is None:
        raise NotFound(f"no text model named {name!r}")
    return removed
