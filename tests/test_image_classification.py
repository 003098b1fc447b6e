"""The pretrained EfficientNet-Lite0 and the ``classify_image`` tool, on real photos from
scikit-image and scikit-learn, through the plugin registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from assistant.errors import InvalidInput, ToolError
from assistant.plugins import load_registry
from assistant.registry import ToolRegistry
from assistant.tooling import ToolContext, Upload
from assistant.uploads import UploadStore
from tools.image_classification.backbone import load_backbone, load_reference
from tools.image_classification.labels import imagenet_labels
from tools.image_classification.preprocess import imagenet_array, normalise

skdata = pytest.importorskip("skimage.data", reason="scikit-image provides the test photos")


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return load_registry(["tools.image_classification"])


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_images

    found = {name: Image.fromarray(getattr(skdata, name)())
             for name in ("chelsea", "coffee", "rocket")}
    china, _flower = load_sample_images().images
    found["china"] = Image.fromarray(china)
    return found


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> UploadStore:
    return UploadStore(tmp_path_factory.mktemp("uploads"), 10 * 1024 * 1024, 40_000_000)


def _upload(store: UploadStore, image: Image.Image, tmp: Path, name: str) -> Upload:
    path = tmp / name
    image.save(path)
    return store.save_path(path, tenant="school")


def _top(probs: np.ndarray, k: int = 3) -> list[str]:
    labels = imagenet_labels()
    return [labels[i].en for i in np.argsort(-probs)[:k]]


def test_label_file_has_1000_bilingual_names_in_imagenet_order() -> None:
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert all(label.en and label.zh for label in labels)
    assert len({label.zh for label in labels}) == 1000
    assert (labels[0].en, labels[1].en, labels[281].en, labels[967].en, labels[999].en) == (
        "tench", "goldfish", "tabby cat", "espresso", "toilet paper")
    assert labels[281].zh == "虎斑猫" and labels[967].zh == "意式浓缩咖啡"


def test_real_photos_get_sensible_classes(photos: dict[str, Image.Image]) -> None:
    backbone = load_backbone()
    batch = np.stack([imagenet_array(normalise(im)) for im in photos.values()])
    probs = dict(zip(photos, backbone.probabilities(batch), strict=True))
    assert _top(probs["chelsea"], 1)[0] in {"Egyptian cat", "tabby cat", "tiger cat"}
    assert set(_top(probs["chelsea"])) <= {"Egyptian cat", "tabby cat", "tiger cat", "lynx"}
    assert _top(probs["coffee"], 1)[0] in {"espresso", "cup", "coffee mug"}
    assert {"missile", "projectile", "space shuttle"} & set(_top(probs["rocket"]))
    assert {"palace", "monastery", "church", "bell-cot"} & set(_top(probs["china"], 2))
    for p in probs.values():
        assert p.sum() == pytest.approx(1.0, abs=1e-4)


def test_optimised_path_matches_the_reference_network(photos: dict[str, Image.Image]) -> None:
    reference = load_reference()
    backbone = load_backbone()
    batch = np.stack([imagenet_array(normalise(im)) for im in photos.values()])
    with torch.no_grad():
        ref = reference(torch.from_numpy(batch)).numpy()
    opt = backbone.logits(batch)
    assert np.abs(ref - opt).max() < 1e-3
    assert (ref.argmax(1) == opt.argmax(1)).all()
    feats = backbone.features(batch)
    assert feats.shape == (len(photos), 1280) and np.isfinite(feats).all()


def test_tool_is_registered_with_bilingual_examples(registry: ToolRegistry) -> None:
    tool = registry.get("classify_image")
    assert tool.capability == "image" and tool.plugin == "tools.image_classification"
    zh = [e for e in tool.examples if any("\u4e00" <= ch <= "\u9fff" for ch in e)]
    en = [e for e in tool.examples if e not in zh]
    assert len(en) >= 25 and len(zh) >= 25
    props = tool.parameters["properties"]
    assert set(props) == {"top_k", "model"}  # no path argument: the image comes from uploads
    assert "context" not in props


def test_tool_classifies_an_upload_in_both_languages(
    registry: ToolRegistry, store: UploadStore, photos: dict[str, Image.Image], tmp_path: Path
) -> None:
    upload = _upload(store, photos["chelsea"], tmp_path, "cat.jpg")
    tool = registry.get("classify_image")
    result = tool.invoke({"top_k": 3}, ToolContext(tenant="school", user="u", files=[upload]))
    labels = result.data["labels"]
    assert len(labels) == 3
    assert labels[0]["label"] in {"Egyptian cat", "tabby cat", "tiger cat"}
    assert labels[0]["label_zh"] in {"埃及猫", "虎斑猫", "虎猫"}
    assert labels[0]["probability"] >= labels[1]["probability"] >= labels[2]["probability"]
    assert result.confidence == pytest.approx(labels[0]["probability"])
    assert result.model == "efficientnet-lite0-imagenet1k" and result.model_version == "0.1.0"
    assert labels[0]["label"] in (result.summary or "")
    zh = tool.invoke({}, ToolContext(tenant="school", user="u", files=[upload], language="zh"))
    assert len(zh.data["labels"]) == 5
    assert zh.summary and zh.summary.startswith("这张图片看起来是")
    assert zh.data["labels"][0]["label_zh"] in zh.summary


def test_tool_without_image_asks_for_one(registry: ToolRegistry) -> None:
    tool = registry.get("classify_image")
    with pytest.raises(ToolError, match="attach an image"):
        tool.invoke({}, ToolContext(tenant="t", user="u", language="en"))
    with pytest.raises(ToolError, match="请先上传一张图片"):
        tool.invoke({}, ToolContext(tenant="t", user="u", language="zh"))


def test_tool_refuses_a_one_pixel_image(registry: ToolRegistry, store: UploadStore,
                                        tmp_path: Path) -> None:
    upload = _upload(store, Image.new("RGB", (1, 1), (9, 9, 9)), tmp_path, "dot.png")
    with pytest.raises(ToolError, match="too small"):
        registry.get("classify_image").invoke({}, ToolContext(tenant="t", user="u",
                                                              files=[upload]))


def test_tool_validates_its_arguments(registry: ToolRegistry) -> None:
    tool = registry.get("classify_image")
    for bad in ({"top_k": 0}, {"top_k": 50}, {"path": "/etc/passwd"}):
        with pytest.raises(InvalidInput):
            tool.validate(bad)


def test_unknown_custom_model_is_a_clear_error(registry: ToolRegistry, store: UploadStore,
                                               photos: dict[str, Image.Image],
                                               tmp_path: Path) -> None:
    from assistant.config import load_settings

    upload = _upload(store, photos["coffee"], tmp_path, "coffee.png")
    settings = load_settings(home=tmp_path / "home")
    context = ToolContext(tenant="t", user="u", files=[upload], settings=settings)
    with pytest.raises(ToolError, match="no custom image model named 'nope'"):
        registry.get("classify_image").invoke({"model": "nope"}, context)
    with pytest.raises(ToolError, match="invalid model name"):
        registry.get("classify_image").invoke({"model": "../../etc"}, context)
