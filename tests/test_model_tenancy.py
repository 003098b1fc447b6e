"""Custom models belong to the tenant that trained them (security issue 13, items 1, 8, 11):
another tenant's key cannot run them, list them or learn their names or labels (tool, HTTP API,
MCP, CLI); versions are saved atomically, a half-written one neither shows nor breaks listing,
and the hidden folders of killed trainings are cleaned up. Real models, trained here."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

import tools.image_classification as image_plugin
import tools.text_classification as text_plugin
from assistant import ToolContext, ToolError
from assistant.config import load_settings
from assistant.errors import InvalidInput
from assistant.llm.fake import FakeBackend
from assistant.model_store import VersionedStore, tenant_dir
from assistant.plugins import load_registry, make_plugin_manager
from assistant.runtime import build_runtime
from assistant.uploads import UploadStore
from knowledge.embedders import shared_embedder
from mentorly_app.cli import cli
from tests.support.live_api import serve
from tests.test_image_training import write_digits
from tests.test_text_training import ROWS
from tools.image_classification.custom_models import ImageModelStore, image_models_dir
from tools.image_classification.training import train_image_classifier
from tools.text_classification.artifacts import list_text_models, text_models_dir
from tools.text_classification.training import train_classifier

A, B = "acme", "beta"
TEXT_MODEL, IMAGE_MODEL = "acme-helpdesk", "acme-digits"
TEXT_LABELS = {"exams": "acme-exams-queue", "technical": "acme-tech-queue",
               "billing": "acme-billing-queue"}
IMAGE_LABELS = ["acme-zero", "acme-one", "acme-two"]
PLUGINS = ["tools.text_classification", "tools.image_classification"]
SECRETS = [TEXT_MODEL, IMAGE_MODEL, *TEXT_LABELS.values(), *IMAGE_LABELS]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tenancy-home")


@pytest.fixture(scope="module")
def trained(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tenant A's text model (the help-desk rows) and image model (3 digits, a tiny CNN)."""
    settings = load_settings(home=home)
    embedder = shared_embedder(settings.embedder.name, settings.embedder.threads)
    text = train_classifier(settings, embedder, TEXT_MODEL, [t for t, _ in ROWS],
                            [TEXT_LABELS[y] for _, y in ROWS], progress=False, tenant=A)
    data = write_digits(tmp_path_factory.mktemp("digits"), 6, classes=range(3))
    for i, label in enumerate(IMAGE_LABELS):
        (data / f"digit_{i}").rename(data / label)
    image = train_image_classifier(data, IMAGE_MODEL, models_root=image_models_dir(settings, A),
                                   method="cnn", epochs=1, progress=False, echo=lambda _: None)
    digit = next((data / IMAGE_LABELS[1]).iterdir())
    return {"text": text, "image": image, "digit": digit}


def _context(tenant: str, settings: Any, tmp_path: Path, image: Path | None = None) -> ToolContext:
    files = []
    if image is not None:
        files = [UploadStore(tmp_path / "uploads", 1_000_000, 1_000_000).save_path(image, tenant)]
    return ToolContext(tenant=tenant, user="u", files=files, settings=settings)


def _refused(call: Any) -> str:
    with pytest.raises(ToolError) as failure:
        call()
    return f"{failure.value.message} {failure.value.zh}"


def _plugins_cli(settings: Any, *args: str) -> Any:
    """``mentorly ARGS`` in-process, with the real plugin hooks over ``settings``' home."""
    runtime = SimpleNamespace(settings=settings, plugin_manager=make_plugin_manager(PLUGINS))
    return CliRunner().invoke(cli, list(args), obj={"settings": settings, "runtime": runtime})


def test_the_tools_run_a_custom_model_only_for_its_tenant(trained: dict[str, Any], home: Path,
                                                          tmp_path: Path) -> None:
    settings = load_settings(home=home)
    registry = load_registry(PLUGINS)
    text, image = registry.get("classify_text"), registry.get("classify_image")
    ask = {"text": "I cannot log in, the page shows an error", "model": TEXT_MODEL}
    ok = text.invoke(ask, _context(A, settings, tmp_path))
    assert ok.data["method"] == "custom" and ok.data["best_guess"] in TEXT_LABELS.values()
    seen = image.invoke({"model": IMAGE_MODEL}, _context(A, settings, tmp_path, trained["digit"]))
    assert seen.model == f"custom:{IMAGE_MODEL}"
    assert {x["label"] for x in seen.data["labels"]} <= set(IMAGE_LABELS)

    as_b = _context(B, settings, tmp_path, trained["digit"])
    for message in (_refused(lambda: text.invoke(ask, as_b)),
                    _refused(lambda: image.invoke({"model": IMAGE_MODEL}, as_b))):
        assert "no " in message and not any(label in message for label in SECRETS[2:])
    # an unknown name lists the caller's models only: none of A's names or labels
    for message in (_refused(lambda: text.invoke({"text": "hello", "model": "nope"}, as_b)),
                    _refused(lambda: image.invoke({"model": "nope"}, as_b))):
        assert not any(secret in message for secret in SECRETS), message


@pytest.fixture(scope="module")
def server(trained: dict[str, Any], home: Path) -> Iterator[SimpleNamespace]:
    runtime = build_runtime(load_settings(home=home, plugins=PLUGINS, llm={"backend": "fake"}),
                            backend=FakeBackend())
    live, app = serve(runtime)
    keys = app.state.keys
    yield SimpleNamespace(url=live.url, a=keys.create(A, "chat,tools")[0],
                          b=keys.create(B, "chat,tools")[0])
    live.stop()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _call(server: SimpleNamespace, key: str, tool: str, arguments: dict[str, Any],
          image: Path | None = None) -> httpx.Response:
    uploads = []
    if image is not None:
        r = httpx.post(server.url + "/api/uploads", headers=_h(key),
                       files={"file": (image.name, image.read_bytes(), "image/png")})
        assert r.status_code == 201, r.text
        uploads = [r.json()["id"]]
    return httpx.post(f"{server.url}/api/tools/{tool}", headers=_h(key), timeout=60,
                      json={"arguments": arguments, "uploads": uploads})


def test_another_tenants_key_cannot_run_or_discover_a_model_over_http(
        server: SimpleNamespace, trained: dict[str, Any]) -> None:
    ask = {"text": "How much does the course cost?", "model": TEXT_MODEL}
    ok = _call(server, server.a, "classify_text", ask)
    assert ok.status_code == 200 and ok.json()["data"]["best_guess"] in TEXT_LABELS.values()
    ok = _call(server, server.a, "classify_image", {"model": IMAGE_MODEL}, trained["digit"])
    assert ok.status_code == 200 and ok.json()["provenance"]["model"] == f"custom:{IMAGE_MODEL}"

    for tool, arguments, image in (("classify_text", ask, None),
                                   ("classify_image", {"model": IMAGE_MODEL}, trained["digit"])):
        r = _call(server, server.b, tool, arguments, image)
        assert r.status_code == 422 and r.json()["error"]["type"] == "tool_error", r.text
        assert not any(label in r.text for label in SECRETS[2:])
    r = _call(server, server.b, "classify_image", {"model": "nope"}, trained["digit"])
    assert r.status_code == 422 and "available: none" in r.text
    assert not any(secret in r.text for secret in SECRETS)


async def _mcp_calls(url: str, key: str) -> list[Any]:
    http = httpx2.AsyncClient(headers=_h(key), timeout=60)
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        return [await client.call_tool("classify_text", {"text": "When is the exam?",
                                                         "model": TEXT_MODEL}),
                await client.call_tool("classify_text", {"text": "hi", "model": "nope"})]


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def test_mcp_runs_a_custom_model_only_for_the_keys_tenant(server: SimpleNamespace) -> None:
    mine, _ = anyio.run(_mcp_calls, server.url, server.a)
    assert not mine.is_error and mine.structured_content["data"]["method"] == "custom"
    theirs, unknown = anyio.run(_mcp_calls, server.url, server.b)
    assert theirs.is_error and unknown.is_error
    for result in (theirs, unknown):
        assert not any(label in _text(result) for label in SECRETS[2:]), _text(result)
    assert TEXT_MODEL not in _text(unknown)


def test_listing_and_deleting_are_per_tenant(trained: dict[str, Any], home: Path) -> None:
    settings = load_settings(home=home)
    for plugin, name in ((text_plugin, TEXT_MODEL), (image_plugin, IMAGE_MODEL)):
        assert name in {m["name"] for m in plugin.list_models(settings, A)}
        assert not any(secret in json.dumps(plugin.list_models(settings, B))
                       for secret in SECRETS)
        assert plugin.delete_model(settings, name, B) is False
    listed = _plugins_cli(settings, "models", "list", "--tenant", B, "--json")
    assert listed.exit_code == 0, listed.output
    assert not any(secret in listed.output for secret in SECRETS)
    listed = _plugins_cli(settings, "models", "list", "--tenant", A, "--json")
    assert {TEXT_MODEL, IMAGE_MODEL} <= {m["name"] for m in json.loads(listed.output)}
    refused = _plugins_cli(settings, "models", "delete", TEXT_MODEL, "--tenant", B)
    assert refused.exit_code == 1 and "for tenant 'beta'" in refused.output
    assert TEXT_MODEL in {m["name"] for m in list_text_models(settings, A)}  # still there


def test_tenant_ids_never_become_path_tricks(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    tenants = settings.models_dir / "tenants"
    assert image_models_dir(settings, "acme") == tenants / "acme" / "image"
    folders = set()
    for tenant in ("../escape", "..", "a/b", "Acme", "x" * 100, "租户", "acme\0"):
        root = image_models_dir(settings, tenant)
        assert root.parent.parent == tenants and root.parent.name.startswith("_"), tenant
        folders.add(root.parent.name)
    assert len(folders) == 7  # and "Acme" is not "acme" on a disk that ignores case
    with pytest.raises(InvalidInput):
        tenant_dir("")


def _copy_version(version_dir: Path, to: Path) -> Path:
    shutil.copytree(version_dir, to)
    return to


def test_a_half_written_version_is_skipped_and_listing_still_works(
        trained: dict[str, Any], home: Path, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    images, texts = image_models_dir(settings, A), text_models_dir(settings, A)
    _copy_version(trained["image"].path, images / IMAGE_MODEL / "v1")
    _copy_version(text_models_dir(load_settings(home=home), A) / TEXT_MODEL / "v1",
                  texts / TEXT_MODEL / "v1")
    # a crash between model.pt and meta.json (the old image trainer), and a torn meta.json
    (images / IMAGE_MODEL / "v2").mkdir()
    shutil.copy(images / IMAGE_MODEL / "v1" / "model.pt", images / IMAGE_MODEL / "v2")
    torn = _copy_version(images / IMAGE_MODEL / "v1", images / "torn" / "v1")
    (torn / "meta.json").write_text('{"name": "torn", "labels": ["a", ', "utf-8")
    torn_text = _copy_version(texts / TEXT_MODEL / "v1", texts / "torn-text" / "v1")
    (torn_text / "meta.json").write_text('{"classes": ["x"', "utf-8")

    listed = image_plugin.list_models(settings, A)
    assert [(m["name"], m["version"], m["versions"]) for m in listed] == [(IMAGE_MODEL, "v1", 1)]
    assert [m["name"] for m in list_text_models(settings, A)] == [TEXT_MODEL]
    assert ImageModelStore(images).load(IMAGE_MODEL).version == 1
    result = _plugins_cli(settings, "models", "list", "--tenant", A, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(m["name"] for m in json.loads(result.output)) == [IMAGE_MODEL, TEXT_MODEL]
    # the next save takes a number no folder holds, and is listed
    store = VersionedStore(images, weights="model.pt")
    with store.writing(IMAGE_MODEL) as pending:
        shutil.copy(images / IMAGE_MODEL / "v1" / "model.pt", pending.path)
        saved = store.commit(pending, store.meta(IMAGE_MODEL, 1))
    assert saved.version == 3 and store.versions(IMAGE_MODEL) == [1, 3]
    assert not [p for p in (images / IMAGE_MODEL).iterdir() if p.name.startswith(".")]


def test_two_saves_of_one_name_at_once_get_distinct_versions(tmp_path: Path) -> None:
    store = VersionedStore(tmp_path, weights="w.bin")
    first, second = store.begin("m"), store.begin("m")
    assert first.version == second.version == 1
    for pending in (first, second):
        (pending.path / "w.bin").write_bytes(b"weights")
    assert store.commit(first, {"n": 1}).version == 1
    assert store.commit(second, {"n": 2}).version == 2
    assert [store.meta("m", v)["n"] for v in store.versions("m")] == [1, 2]


def _aged(path: Path, seconds: float) -> Path:
    path.mkdir(parents=True)
    (path / "model.pt").write_bytes(b"partial")
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_folders_of_killed_trainings_are_removed_when_the_store_opens(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    images, texts = image_models_dir(settings, A), text_models_dir(settings, A)
    stale = [_aged(images / "m" / ".partial-v1-123-abcd", 2 * 3600),
             _aged(images / ".partial-deleted-old-1234", 2 * 3600),
             _aged(texts / "t" / ".v2-k3j4h5", 2 * 3600)]  # the text trainer's, before the store
    live = _aged(images / "m" / ".partial-v2-456-ef01", 60)  # a training saving right now
    image_plugin.list_models(settings, A)
    text_plugin.list_models(settings, A)
    assert not any(p.exists() for p in stale)
    assert live.is_dir()


def test_models_from_before_tenancy_belong_to_the_default_tenant(
        trained: dict[str, Any], home: Path, tmp_path: Path) -> None:
    old = load_settings(home=tmp_path)
    text_version = text_models_dir(load_settings(home=home), A) / TEXT_MODEL / "v1"
    _copy_version(trained["image"].path, old.models_dir / "image" / "old-digits" / "v1")
    _copy_version(text_version, old.models_dir / "text" / "old-helpdesk" / "v1")
    _copy_version(text_version, old.models_dir / "text" / "sentiment" / "v1")  # the shared preset
    registry = load_registry(PLUGINS)
    text, image = registry.get("classify_text"), registry.get("classify_image")
    ask = {"text": "I was charged twice", "model": "old-helpdesk"}
    as_b = _context(B, old, tmp_path, trained["digit"])
    _refused(lambda: text.invoke(ask, as_b))
    _refused(lambda: image.invoke({"model": "old-digits"}, as_b))
    as_default = _context("default", old, tmp_path, trained["digit"])
    assert text.invoke(ask, as_default).model == "text-model:old-helpdesk"
    assert image.invoke({"model": "old-digits"}, as_default).model == "custom:old-digits"
    moved = old.models_dir / "tenants" / "default"
    assert (moved / "image" / "old-digits" / "v1" / "meta.json").is_file()
    assert (moved / "text" / "old-helpdesk" / "v1" / "meta.json").is_file()
    assert not (old.models_dir / "image" / "old-digits").exists()
    assert (old.models_dir / "text" / "sentiment" / "v1").is_dir()  # presets stay shared
    names_b = {m["name"] for m in text_plugin.list_models(old, B)}
    assert names_b == {"sentiment"}
