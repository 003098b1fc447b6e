"""The ``classify_image`` tool: the attached image → top-k labels in English and Chinese."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import Field

from assistant import ToolContext, ToolError, ToolResult, Upload, tool
from assistant.errors import InvalidInput, NotFound

from .examples import EXAMPLES
from .labels import imagenet_labels
from .preprocess import MIN_SIDE, imagenet_array, open_rgb

if TYPE_CHECKING:  # torch loads on the first call, not when the plugin registers
    from .custom_models import ImageModelStore

TOOL_VERSION = "1.0.0"

_ASK_FOR_IMAGE = {
    "en": "Please attach an image (PNG, JPEG, GIF, WEBP, BMP or TIFF) so I can classify it.",
    "zh": "请先上传一张图片（PNG、JPEG、GIF、WEBP、BMP 或 TIFF），我才能识别它。",
}


def _lang(context: ToolContext) -> str:
    return "zh" if str(context.language or "").lower().startswith("zh") else "en"


def _load_image(upload: Upload, lang: str) -> Any:
    try:
        image = open_rgb(upload.path)
    except InvalidInput as exc:
        raise ToolError(
            f"图片无法读取：{exc.message}" if lang == "zh" else f"The image cannot be read: "
            f"{exc.message}"
        ) from None
    if min(image.size) < MIN_SIDE:
        w, h = image.size
        raise ToolError(
            f"图片太小（{w}×{h} 像素），至少需要 {MIN_SIDE}×{MIN_SIDE}。" if lang == "zh" else
            f"The image is too small to classify ({w}×{h} pixels); send one of at least "
            f"{MIN_SIDE}×{MIN_SIDE}."
        )
    return image


def _summary(top: list[dict[str, Any]], lang: str, model_label: str | None) -> str:
    first = top[0]
    pct = round(first["probability"] * 100)
    rest = top[1:3]
    if lang == "zh":
        text = f"这张图片看起来是{first['label_zh']}（{pct}%）"
        if rest:
            text += "；其他可能：" + "、".join(
                f"{r['label_zh']}（{round(r['probability'] * 100)}%）" for r in rest)
        text += "。"
        if model_label:
            text += f"（自定义模型 {model_label}）"
        return text
    article = "an" if first["label"][:1].lower() in "aeiou" else "a"
    text = f"This looks like {article} {first['label']} ({pct}%)"
    if rest:
        text += "; other possibilities: " + ", ".join(
            f"{r['label']} ({round(r['probability'] * 100)}%)" for r in rest)
    text += "."
    if model_label:
        text += f" (custom model {model_label})"
    return text


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _custom_model(context: ToolContext, name: str) -> Any:
    """The named custom classifier; an invalid or unknown name is a ``ToolError``."""
    store = model_store(context)
    try:
        return store.load(name)
    except InvalidInput:
        raise ToolError(
            f"invalid model name {_shown(name)}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            zh=f"模型名称 {_shown(name)} 无效：请用 1-64 个字母、数字、'_'、'-' 或 '.'，"
               "并以字母或数字开头") from None
    except NotFound:  # only this tenant's models are named: the store is the tenant's
        names = ", ".join(m["name"] for m in store.list()[:10])
        raise ToolError(f"no custom image model named {_shown(name)} (available: {names or 'none'})",
                        zh=f"没有名为 {_shown(name)} 的自定义图片模型（可用：{names or '无'}）") from None


def model_store(context: ToolContext) -> ImageModelStore:
    """The calling tenant's store (one per folder, so loaded custom models stay cached)."""
    from .custom_models import ImageModelStore, image_models_dir

    settings = context.settings
    return ImageModelStore.open(image_models_dir(settings, context.tenant or settings.default_tenant))


@tool(capability="image", examples=EXAMPLES, version=TOOL_VERSION)
def classify_image(
    context: ToolContext,
    top_k: Annotated[int, Field(ge=1, le=20, description="how many labels to return")] = 5,
    model: Annotated[str | None, Field(
        description="name of a custom image classifier (see `mentorly models list`); "
                    "default: the pretrained ImageNet model")] = None,
) -> ToolResult:
    """Recognise what the attached image shows: the most likely labels with probabilities,
    in English and Chinese. Uses the pretrained ImageNet model (1000 everyday objects, animals,
    foods and scenes) or, with `model`, a custom classifier trained on the user's own images."""
    lang = _lang(context)
    upload = context.image
    if upload is None:
        raise ToolError(_ASK_FOR_IMAGE[lang])
    image = _load_image(upload, lang)
    if model and model.strip():
        classifier = _custom_model(context, model)
        probs = classifier.predict_proba([image])[0]
        order = np.argsort(-probs)[: min(top_k, len(probs))]
        top = [{"label": classifier.labels[i], "label_zh": classifier.labels[i],
                "index": int(i), "probability": float(probs[i])} for i in order]
        model_name, model_version = f"custom:{classifier.name}", classifier.version_label
        model_label: str | None = f"{classifier.name} {classifier.version_label}"
    else:
        from .backbone import load_backbone

        backbone = load_backbone()
        probs = backbone.probabilities(imagenet_array(image)[None])[0]
        labels = imagenet_labels()
        order = np.argsort(-probs)[:top_k]
        top = [{"label": labels[i].en, "label_zh": labels[i].zh, "index": int(i),
                "probability": float(probs[i])} for i in order]
        model_name, model_version, model_label = backbone.name, backbone.version, None
    data = {
        "labels": top,
        "image": {"id": upload.id, "width": image.size[0], "height": image.size[1]},
        "model": model_name,
    }
    return ToolResult(data=data, summary=_summary(top, lang, model_label), model=model_name,
                      model_version=model_version, confidence=float(top[0]["probability"]))
