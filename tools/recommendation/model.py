"""Training and the saved artifact (``models/recommend/<tenant>/model.npz`` under
``settings.trained_models_dir``: the folder every replica shares, ``home/models`` without
``shared_dir``, as before; a replica's own copy from before ``shared_dir`` was set moves there
when the shared folder has none).

Training reads every event of the tenant, weights them (``hybrid.interaction_weight``), picks
the CF model, its regularisation and the blend weights by measurement on a per-learner hold-out
(EASE + blend vs item-kNN vs popularity, nDCG@10; see tuning.py), computes popularity and
embeds the catalog for content similarity (vectors are reused for resources whose text did not
change). The artifact is written to a temporary file and renamed, so a crash never leaves half a
model, and a replica reading it meanwhile gets the old file or the new one. Loaded models are
cached against the file's ``stat``: a model another replica wrote is read on the next request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from assistant.config import Settings, get_settings
from assistant.model_store import adopt_local, trained_root
from knowledge.atomic import atomic_path

from .catalog import load_catalog
from .cf import EASE, EASE_MAX_ITEMS, ItemKNN, Popularity
from .evaluation import evaluate, random_split, top_k
from .events import all_events
from .hybrid import HybridScorer, interaction_weight
from .store import CatalogItem
from .tuning import HybridParams, tune_hybrid

log = logging.getLogger(__name__)
MODEL_NAME = "mentorly-hybrid-rec"
_TENANT_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class RecModel:
    item_ids: list[str]
    popularity: np.ndarray
    B: np.ndarray | None = None
    content: np.ndarray | None = None
    content_keys: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "0"))

    def index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def scorer(self) -> HybridScorer:
        """The blend with the weights chosen at training (defaults for older model files)."""
        blend = self.meta.get("blend") or {}
        defaults = HybridParams()
        return HybridScorer(self.B, self.popularity, self.content,
                            content_weight=float(blend.get("content_weight", defaults.content_weight)),
                            popularity_weight=float(blend.get("popularity_weight",
                                                              defaults.popularity_weight)))


def model_dir(settings: Settings, tenant: str) -> Path:
    safe = tenant if _TENANT_SAFE.match(tenant) and tenant not in (".", "..") else \
        "t-" + hashlib.sha256(tenant.encode()).hexdigest()[:24]
    folder = trained_root(settings) / "recommend" / safe
    local = settings.models_dir / "recommend" / safe
    if local != folder and local not in _ADOPTED:
        _ADOPTED.add(local)  # once per process: a replica's model from before shared_dir
        if not folder.exists() and adopt_local(local, folder):
            log.info("moved the recommendation model of %s from %s to %s", tenant, local, folder)
    return folder


_ADOPTED: set[Path] = set()


def model_path(settings: Settings, tenant: str) -> Path:
    return model_dir(settings, tenant) / "model.npz"


def save_model(model: RecModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "item_ids": np.array(model.item_ids, dtype=str),
        "popularity": model.popularity.astype(np.float32),
        "content_keys": np.array(model.content_keys, dtype=str),
        "meta": np.array(json.dumps(model.meta, ensure_ascii=False)),
    }
    if model.B is not None:
        arrays["B"] = model.B.astype(np.float32)
    if model.content is not None:
        arrays["content"] = model.content.astype(np.float32)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def read_model(path: Path) -> RecModel:
    with np.load(path, allow_pickle=False) as z:
        return RecModel(item_ids=[str(x) for x in z["item_ids"]], popularity=z["popularity"],
                        B=z["B"] if "B" in z else None,
                        content=z["content"] if "content" in z else None,
                        content_keys=[str(x) for x in z["content_keys"]],
                        meta=json.loads(str(z["meta"])))


_CACHE: dict[Path, tuple[tuple[int, int, int, int], RecModel]] = {}
_LOCK = threading.Lock()


def load_model(settings: Settings, tenant: str) -> RecModel | None:
    """The saved model, re-read only when the file changed (here or on another replica: each
    save renames a new file into place, so its inode and modification time change)."""
    path = model_path(settings, tenant)
    try:
        st = path.stat()
    except FileNotFoundError:
        with _LOCK:
            _CACHE.pop(path, None)
        return None
    stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _LOCK:  # the lookup only: reading a file must not hold up other tenants' lookups
        cached = _CACHE.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        model = read_model(path)  # two first calls may both read it; either is the file's
    except FileNotFoundError:
        return None  # replaced between the stat and the read: the next call reads the new one
    with _LOCK:
        _CACHE[path] = (stamp, model)
    return model


SEED_VECTORS = Path(__file__).parent / "data" / "demo_vectors.npz"
"""Precomputed content vectors of the demo catalog, keyed by ``text_key`` and embedder name
(``python -m tools.recommendation.model`` rebuilds it): the first ``make serve`` need not spend
~25 s of one CPU core embedding 100 resources."""


def item_text(item: Any) -> str:
    """What the embedder reads for a resource: both titles and the English description
    (the multilingual embedder matches Chinese queries to it)."""
    titles = " / ".join(t for t in (item.title, item.title_zh) if t)
    return f"{titles}. {item.description or item.description_zh}"[:400]


def seed_vectors(embedder_name: str) -> dict[str, np.ndarray]:
    if not SEED_VECTORS.is_file():
        return {}
    with np.load(SEED_VECTORS, allow_pickle=False) as z:
        if str(z["embedder"]) != embedder_name:
            return {}
        return dict(zip([str(k) for k in z["keys"]], z["vectors"].astype(np.float32), strict=True))


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def embed_items(items: list[CatalogItem], settings: Settings, previous: RecModel | None,
                progress: bool = False) -> tuple[np.ndarray | None, list[str], str | None]:
    """Content vectors for the catalog, reusing unchanged ones; (None, keys, why) if no embedder."""
    texts = [item_text(i) for i in items]
    keys = [text_key(t) for t in texts]
    old: dict[str, np.ndarray] = {}
    if previous is not None and previous.content is not None:
        old = dict(zip(previous.content_keys, previous.content, strict=False))
    try:
        from knowledge.embedders import EmbedderError, shared_embedder

        embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    except (ImportError, EmbedderError) as exc:  # content similarity is optional
        log.warning("recommendation: no content vectors (%s)", exc)
        return None, keys, str(exc)
    old = {**seed_vectors(str(getattr(embedder, "name", ""))), **old}
    missing = [j for j, k in enumerate(keys) if k not in old]
    fresh: dict[int, np.ndarray] = {}
    if missing:
        from tqdm import tqdm

        batches = range(0, len(missing), 16)
        for start in tqdm(batches, desc="embedding catalog", disable=not progress, unit="batch"):
            part = missing[start:start + 16]
            vectors = embedder.embed_documents([texts[j] for j in part])
            fresh.update(zip(part, vectors, strict=True))
    rows = [fresh[j] if j in fresh else old[k] for j, k in enumerate(keys)]
    return np.vstack(rows).astype(np.float32), keys, getattr(embedder, "name", None)


def interaction_matrix(events: list[tuple[str, str, str, float | None]], index: dict[str, int]
                       ) -> tuple[sp.csr_matrix, int]:
    """Learners × resources, each cell the strongest event weight; events for unknown
    resources (deleted since) are skipped. Returns the matrix and how many events it used."""
    users: dict[str, int] = {}
    cells: dict[tuple[int, int], float] = {}
    used = 0
    for user, resource, kind, value in events:
        j = index.get(resource)
        if j is None:
            continue
        u = users.setdefault(user, len(users))
        w = interaction_weight(kind, value)
        if w > cells.get((u, j), 0.0):
            cells[(u, j)] = w
        used += 1
    if not cells:
        return sp.csr_matrix((0, len(index)), dtype=np.float32), used
    (r, c), v = zip(*cells.keys(), strict=True), list(cells.values())
    return sp.csr_matrix((np.array(v, np.float32), (np.array(r), np.array(c))),
                         shape=(len(users), len(index))), used


def select_cf(X: sp.csr_matrix, content: np.ndarray | None = None
              ) -> tuple[EASE | ItemKNN | None, dict[str, Any]]:
    """Pick the CF model, its settings and the blend weights by nDCG@10 on a per-learner 20 %
    hold-out of the strong interactions (EASE settings and blend weights: ``tuning.tune_hybrid``,
    the same search benchmarks/recommend.py runs). The chosen blend is ``report["blend"]``."""
    n_items = X.shape[1]
    positives = X.multiply(X >= 0.6).tocoo()
    report: dict[str, Any] = {"candidates": {}, "blend": HybridParams().as_dict()}
    if X.shape[0] < 5 or positives.nnz < 20:
        report["reason"] = "too little activity for collaborative filtering"
        return None, report
    split = random_split(positives.row, positives.col, X.shape, seed=7, min_positives=3)
    if not split.test:
        report["reason"] = "no learner has enough activity for a hold-out"
        return None, report
    heldout = sp.csr_matrix((np.ones(sum(v.size for v in split.test.values()), np.float32),
                             (np.concatenate([np.full(v.size, u) for u, v in split.test.items()]),
                              np.concatenate(list(split.test.values())))), shape=X.shape)
    train = (X - X.multiply(heldout)).tocsr()
    train.eliminate_zeros()
    k = min(10, n_items - 1)
    best: tuple[float, str, Any] = (-1.0, "", None)
    for label, model in [("popularity", Popularity()), ("itemknn(k=50)", ItemKNN(50))]:
        model.fit(train)
        got = evaluate(lambda us, m=model: top_k(m.score(train[us]), train[us], k), split).ndcg
        report["candidates"][label] = round(got, 4)
        if got > best[0]:
            best = (got, label, model)
    if n_items <= EASE_MAX_ITEMS:
        seen = (train > 0).astype(np.float32).tocsr()
        popularity = np.asarray(seen.sum(axis=0), dtype=np.float32).ravel()
        params, got, tried = tune_hybrid(train, seen, split, popularity, content)
        report["candidates"][params.label] = round(got, 4)
        report["configs_tried"] = len(tried)
        if got > best[0]:
            best = (got, params.label, params)
            report["blend"] = params.as_dict()
    report["chosen"] = best[1]
    report["validation_users"] = len(split.test)
    if isinstance(best[2], Popularity):
        return None, report
    if isinstance(best[2], HybridParams):
        return EASE(best[2].l2, best[2].dropout).fit(X), report
    return ItemKNN(best[2].k).fit(X), report


def train_model(tenant: str, settings: Settings | None = None, progress: bool = False,
                before_save: Callable[[], None] | None = None) -> RecModel:
    """Full retrain from the database. ``before_save`` runs just before the file is written
    (a scheduled retrain checks there that it still holds its lease: it raises if not)."""
    settings = settings or get_settings()
    started = time.perf_counter()
    items = load_catalog(tenant, settings)
    if not items:
        raise ValueError(f"tenant {tenant!r} has no catalog yet: import one first (mentorly rec import)")
    item_ids = [i.id for i in items]
    index = {item: j for j, item in enumerate(item_ids)}
    events = all_events(tenant, settings)
    X, used = interaction_matrix(events, index)
    previous = load_model(settings, tenant)
    content, keys, embedder_name = embed_items(items, settings, previous, progress)
    cf, selection = select_cf(X, content)
    B: np.ndarray | None = None
    if isinstance(cf, EASE):
        B = cf.B
    elif isinstance(cf, ItemKNN):
        B = cf.S.toarray()
    popularity = np.asarray((X > 0).sum(axis=0), dtype=np.float32).ravel() if X.shape[0] \
        else np.zeros(len(item_ids), np.float32)
    version = int(previous.meta.get("version", 0)) + 1 if previous else 1
    meta = {"version": version, "model": MODEL_NAME, "cf": selection.get("chosen", "none"),
            "blend": selection["blend"],
            "selection": selection, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "n_items": len(item_ids), "n_learners": int(X.shape[0]), "n_events": used,
            "events_total": len(events),
            "embedder": embedder_name if content is not None else None,
            "fit_s": round(time.perf_counter() - started, 3)}
    model = RecModel(item_ids=item_ids, popularity=popularity, B=B, content=content,
                     content_keys=keys, meta=meta)
    if before_save is not None:
        before_save()
    save_model(model, model_path(settings, tenant))
    return model


def build_seed_vectors() -> Path:
    """Embed the demo catalog with the default embedder and write ``SEED_VECTORS``."""
    from knowledge.embedders import shared_embedder

    from .catalog import read_rows, validate_rows
    from .demo import DEMO_CATALOG

    resources, _ = validate_rows(read_rows(DEMO_CATALOG))
    settings = get_settings()
    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    texts = [item_text(r) for r in resources]
    vectors = embedder.embed_documents(texts)
    np.savez_compressed(SEED_VECTORS, keys=np.array([text_key(t) for t in texts]),
                        vectors=vectors.astype(np.float16), embedder=np.array(embedder.name))
    return SEED_VECTORS


if __name__ == "__main__":
    print(build_seed_vectors())
