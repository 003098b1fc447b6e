"""Replicas on one shared folder: two ``Settings`` with their own ``home`` and the same
``shared_dir`` (two ``mentorly serve``), with the real trainers, the real embedder and the real
upload store. A model trained or deleted on one is used or refused on the other without a
restart; an upload stored through one is read through the other; the scheduled recommender
retrain runs once when two replicas (two processes) find the model due at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import ToolContext, ToolError
from assistant.config import Settings, load_settings
from assistant.errors import NotFound
from assistant.plugins import load_registry
from assistant.uploads import UploadStore
from knowledge.embedders import shared_embedder
from tests.conftest import REPO_ROOT
from tests.test_image_training import _digit_image, write_digits
from tests.test_text_training import ROWS
from tools.image_classification.custom_models import image_models_dir
from tools.image_classification.training import train_image_classifier
from tools.recommendation.model import model_dir
from tools.text_classification.artifacts import (
    SENTIMENT,
    delete_text_model,
    list_text_models,
    save_model,
    text_models_dir,
)
from tools.text_classification.tool import run_classification, trained_model
from tools.text_classification.training import train_classifier

TENANT = "school"


def _replicas(tmp_path: Path, db_url: str | None = None) -> tuple[Settings, Settings]:
    extra = {"database_url": db_url} if db_url else {}
    a, b = (load_settings(home=tmp_path / name, shared_dir=tmp_path / "shared", **extra)
            for name in ("replica-a", "replica-b"))
    for settings in (a, b):
        settings.ensure_dirs()
    return a, b


# -- layout ------------------------------------------------------------------------------------


def test_without_shared_dir_every_trained_model_stays_where_it_was(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    models = tmp_path / "models"
    assert settings.trained_models_dir == settings.models_dir == models
    assert text_models_dir(settings, TENANT) == models / "tenants" / TENANT / "text"
    assert text_models_dir(settings) == models / "text"  # the presets
    assert image_models_dir(settings, TENANT) == models / "tenants" / TENANT / "image"
    assert model_dir(settings, TENANT) == models / "recommend" / TENANT
    assert settings.uploads_dir == tmp_path / "uploads"


def test_with_shared_dir_trained_models_are_shared_and_prepared_ones_are_not(
        tmp_path: Path) -> None:
    a, b = _replicas(tmp_path)
    shared = tmp_path / "shared" / "models"
    assert a.models_dir != b.models_dir  # the GGUF and the backbone: each replica's own
    for settings in (a, b):
        assert text_models_dir(settings, TENANT) == shared / "tenants" / TENANT / "text"
        assert text_models_dir(settings) == shared / "text"
        assert image_models_dir(settings, TENANT) == shared / "tenants" / TENANT / "image"
        assert model_dir(settings, TENANT) == shared / "recommend" / TENANT


def _fake_text_model(settings: Settings, name: str, tenant: str | None) -> Path:
    """A well-formed artifact (real format, weights that mean nothing) for the moves below."""
    saved = save_model(settings, name, ["a", "b"], np.zeros((1, 4), np.float32),
                       np.zeros(1, np.float32), {"embedder": "none"}, tenant=tenant)
    return text_models_dir(settings, tenant) / name / f"v{saved.version}"


def test_models_trained_before_shared_dir_move_into_the_shared_folder(tmp_path: Path) -> None:
    before_a = load_settings(home=tmp_path / "replica-a")  # each machine alone, no shared_dir
    own = _fake_text_model(before_a, "helpdesk", TENANT)
    preset_a = _fake_text_model(before_a, SENTIMENT, None)
    preset_b = _fake_text_model(load_settings(home=tmp_path / "replica-b"), SENTIMENT, None)
    assert own.is_relative_to(tmp_path / "replica-a" / "models")
    a, b = _replicas(tmp_path)
    shared = tmp_path / "shared" / "models"
    # B is asked first: its prepared preset moves to the shared folder; A's model is not there yet
    assert {m["name"] for m in list_text_models(b, TENANT)} == {SENTIMENT}
    assert not preset_b.exists() and (shared / "text" / SENTIMENT / "v1").is_dir()
    listed = {m["name"]: m for m in list_text_models(a, TENANT)}
    assert set(listed) == {"helpdesk", SENTIMENT}
    assert Path(listed["helpdesk"]["path"]) == shared / "tenants" / TENANT / "text" / "helpdesk" / "v1"
    assert Path(listed[SENTIMENT]["path"]) == shared / "text" / SENTIMENT / "v1"
    assert not own.exists()  # moved, not copied
    assert preset_a.is_dir()  # the shared folder had a preset already: A's copy is left unused
    assert {m["name"] for m in list_text_models(b, TENANT)} == {"helpdesk", SENTIMENT}
    assert trained_model(b, SENTIMENT) is not None


# -- text --------------------------------------------------------------------------------------


def _train_text(settings: Settings, name: str, rows: list[tuple[str, str]]) -> int:
    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    model = train_classifier(settings, embedder, name, [t for t, _ in rows],
                             [y for _, y in rows], progress=False, tenant=TENANT)
    return model.version


def _classify(settings: Settings, text: str) -> Any:
    return run_classification(text, model="helpdesk", settings=settings, tenant=TENANT)


def test_a_text_model_trained_or_deleted_on_one_replica_is_seen_by_the_other(
        tmp_path: Path) -> None:
    a, b = _replicas(tmp_path)
    with pytest.raises(ToolError, match="no text model named 'helpdesk'"):
        _classify(b, "The page shows an error when I sign in")
    assert _train_text(a, "helpdesk", ROWS) == 1
    first = _classify(b, "The page shows an error when I sign in")
    assert first.model == "text-model:helpdesk" and first.model_version == "v1"
    assert first.data["best_guess"] == "technical"

    assert _train_text(a, "helpdesk", ROWS) == 2  # a retrain on A: B uses it at once
    assert _classify(b, "The page shows an error when I sign in").model_version == "v2"

    delete_text_model(a, "helpdesk", TENANT)  # a delete on A: B refuses the name at once
    with pytest.raises(ToolError, match="no text model named 'helpdesk'"):
        _classify(b, "The page shows an error when I sign in")

    # trained again after the delete: a new v1 with other labels, not B's cached old v1
    exams_or_billing = [(t, y) for t, y in ROWS if y != "technical"]
    assert _train_text(a, "helpdesk", exams_or_billing) == 1
    again = _classify(b, "How much does the course cost?")
    assert again.model_version == "v1"
    assert {s["label"] for s in again.data["scores"]} == {"exams", "billing"}


# -- images and uploads --------------------------------------------------------------------------


def test_an_image_model_and_an_upload_travel_between_replicas(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    a, b = _replicas(tmp_path)
    data = write_digits(tmp_path / "digits", 12, classes=range(3))

    def train() -> int:
        return train_image_classifier(data, "digits", models_root=image_models_dir(a, TENANT),
                                      method="cnn", epochs=1, progress=False,
                                      echo=lambda _: None).version

    uploads_a = UploadStore(a.uploads_dir, a.uploads.max_bytes, a.uploads.max_pixels)
    uploads_b = UploadStore(b.uploads_dir, b.uploads.max_bytes, b.uploads.max_pixels)
    digits = load_digits()
    picture = tmp_path / "two.png"
    _digit_image(digits.images[np.flatnonzero(digits.target == 2)[40]]).save(picture)
    stored = uploads_a.save_path(picture, TENANT)  # received by replica A
    on_b = uploads_b.get(TENANT, stored.id)  # ... read by replica B, by its id
    assert on_b.path.read_bytes() == picture.read_bytes() and on_b.mime == "image/png"

    tool = load_registry(["tools.image_classification"]).get("classify_image")
    context = ToolContext(tenant=TENANT, user="u", files=[on_b], settings=b)
    with pytest.raises(ToolError, match="no custom image model named 'digits'"):
        tool.invoke({"model": "digits"}, context)
    assert train() == 1
    result = tool.invoke({"model": "digits", "top_k": 3}, context)
    assert result.model == "custom:digits" and result.model_version == "v1"
    assert {r["label"] for r in result.data["labels"]} == {"digit_0", "digit_1", "digit_2"}
    assert train() == 2
    assert tool.invoke({"model": "digits"}, context).model_version == "v2"

    import tools.image_classification as image_plugin

    assert image_plugin.delete_model(a, "digits", TENANT) is True
    with pytest.raises(ToolError, match="no custom image model named 'digits'"):
        tool.invoke({"model": "digits"}, context)

    uploads_a.delete(TENANT, stored.id)  # deleted on A: unknown on B
    with pytest.raises(NotFound):
        uploads_b.get(TENANT, stored.id)


# -- the scheduled recommender retrain ---------------------------------------------------------

_RACER = """
import sys, time
from pathlib import Path
from assistant.config import load_settings
from knowledge.embedders import shared_embedder
from tools.recommendation.schedule import retrain_once
from tools.recommendation.store import database

settings = load_settings()
database(settings)
shared_embedder(settings.embedder.name, settings.embedder.threads)  # warm, before the start line
Path(sys.argv[4]).touch()
while not Path(sys.argv[1]).exists():
    time.sleep(0.005)
print("OUTCOME", retrain_once(settings, sys.argv[2], float(sys.argv[3])), flush=True)
"""


def test_two_replicas_due_at_once_retrain_exactly_once(db_url: str, tmp_path: Path) -> None:
    from tools.recommendation.catalog import import_file
    from tools.recommendation.demo import DEMO_CATALOG
    from tools.recommendation.events import record_events
    from tools.recommendation.model import load_model, train_model
    from tools.recommendation.schedule import retrain_once

    a, b = _replicas(tmp_path, db_url)
    tenant = "race"
    assert import_file(DEMO_CATALOG, tenant=tenant, settings=a).imported == 100
    record_events([{"user": f"s{n}", "resource": r, "kind": "complete"}
                   for n in range(6) for r in ("math-101", "math-102", "cs-101")],
                  tenant=tenant, settings=a)
    first = train_model(tenant, a)
    record_events([{"user": "s9", "resource": "cs-101", "kind": "like"}], tenant=tenant,
                  settings=b)  # new events since: the model is due once it is old enough
    every_hours = 0.5 / 3600  # half a second

    start = tmp_path / "go"
    env = {**os.environ, "MENTORLY_DATABASE_URL": db_url,
           "MENTORLY_SHARED_DIR": str(tmp_path / "shared"), "PYTHONPATH": str(REPO_ROOT)}
    ready = [tmp_path / "ready-a", tmp_path / "ready-b"]
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(start), tenant, str(every_hours),
                                str(flag)],
                               env={**env, "MENTORLY_HOME": str(settings.home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO_ROOT)
              for settings, flag in zip((a, b), ready, strict=True)]
    try:
        deadline = time.monotonic() + 120
        while not all(flag.exists() for flag in ready) or \
                time.time() - _trained_at(first) < 1.0:  # old enough: due for both at once
            assert time.monotonic() < deadline and all(r.poll() is None for r in racers), \
                [r.communicate()[1][-2000:] for r in racers if r.poll() is not None]
            time.sleep(0.05)
        start.touch()  # both replicas find the model due at the same moment
        outputs = [r.communicate(timeout=180) for r in racers]
    finally:
        for r in racers:
            r.kill()
    outcomes = sorted(line.split()[1] for out, _ in outputs for line in out.splitlines()
                      if line.startswith("OUTCOME"))
    assert len(outcomes) == 2, [err[-2000:] for _, err in outputs]
    assert outcomes.count("trained") == 1 and set(outcomes) <= {"trained", "busy", "fresh"}
    for settings in (a, b):  # both replicas now read the one new model from the shared folder
        model = load_model(settings, tenant)
        assert model is not None and int(model.version) == int(first.version) + 1
        assert model.meta["events_total"] == 19
    assert retrain_once(b, tenant, every_hours) == "fresh"  # nothing new since: no third run


def _trained_at(model: Any) -> float:
    """When ``model`` was trained (epoch seconds), from its ``trained_at``."""
    from datetime import UTC, datetime

    return datetime.strptime(model.meta["trained_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC).timestamp()
