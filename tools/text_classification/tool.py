"""The ``classify_text`` tool: zero-shot labels, the sentiment model, or a custom classifier."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant import ToolContext, ToolError, ToolResult, tool
from assistant.config import get_settings
from assistant.errors import InvalidInput, ModelError, NotFound
from knowledge.embedders import Embedder, shared_embedder

from .artifacts import (
    SENTIMENT,
    LinearTextModel,
    check_name,
    latest_version,
    load_model,
    model_path,
)
from .examples import EXAMPLES
from .extraction import extract_arguments
from .language import (
    MAX_CLASSIFY_CHARS,
    clean_text,
    detect_language,
    shown,
)
from .zero_shot import (
    UNCERTAIN,
    UNCERTAIN_BELOW,
    UNCERTAIN_BELOW_BINARY,
    Prediction,
    ZeroShotClassifier,
    negated_pairs,
)

log = logging.getLogger(__name__)
TOOL_VERSION = "1.0.0"

_zero_shot: dict[str, ZeroShotClassifier] = {}
_models: dict[Path, tuple[Any, LinearTextModel]] = {}
"""Loaded models by their name's folder, with the stamp of the version loaded: one per name."""
_lock = threading.Lock()


def _embedder(settings: Any) -> Embedder:
    return shared_embedder(settings.embedder.name, settings.embedder.threads)


def zero_shot_classifier(embedder: Embedder) -> ZeroShotClassifier:
    """One classifier (and label-vector cache) per embedder."""
    with _lock:
        clf = _zero_shot.get(embedder.name)
        if clf is None or clf.embedder is not embedder:
            clf = _zero_shot[embedder.name] = ZeroShotClassifier(embedder)
        return clf


def trained_model(settings: Any, name: str, tenant: str | None = None) -> LinearTextModel | None:
    """The latest version of ``tenant``'s text model ``name`` (or of a shared preset), cached;
    None if it was never trained (or was deleted, here or by another replica).

    Every call lists the versions and stats the latest one's ``meta.json``: a version trained
    by another process on the same (shared) folder is loaded on the next call, a retrained v1
    (after a delete) is told from the old v1 by its new ``meta.json``."""
    version = latest_version(settings, name, tenant=tenant)
    folder = model_path(settings, name, version or 0, tenant=tenant)  # the tenant's own folder
    if version is None:
        with _lock:
            _models.pop(folder.parent, None)
        return None
    try:
        st = (folder / "meta.json").stat()
        stamp: Any = (version, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        return None  # deleted between the listing and now
    with _lock:
        cached = _models.get(folder.parent)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    model = load_model(settings, name, version, tenant=tenant)
    with _lock:
        _models[folder.parent] = (stamp, model)
    return model


def _predict_trained(model: LinearTextModel, embedder: Embedder, text: str) -> Prediction:
    if model.embedder != embedder.name:
        raise ModelError(
            f"text model {model.name!r} was trained on embeddings from {model.embedder!r} but the "
            f"configured embedder is {embedder.name!r}: retrain it (mentorly train text)"
        )
    probs = model.predict_proba(embedder.embed_documents([text]), [text])[0]
    scores = sorted(zip(model.classes, (float(p) for p in probs), strict=True),
                    key=lambda s: -s[1])
    best, confidence = scores[0]
    bar = UNCERTAIN_BELOW_BINARY if len(scores) == 2 else UNCERTAIN_BELOW
    return Prediction(label=best if confidence >= bar else UNCERTAIN, best_guess=best,
                      confidence=confidence, scores=scores)


METHOD_ZH = {"sentiment": "情感模型", "zero-shot": "零样本分类", "custom": "自定义模型",
             "zero-shot sentiment": "零样本情感分类"}


def _negation_notice(pair: tuple[str, str], lang: str) -> str:
    base, negated = pair
    if lang == "zh":
        return (f"“{negated}”是“{base}”的否定：零样本分类分不清一个标签和它的否定，所以不给出"
                f"答案。请改用意思相反的说法（例如“紧急”/“可以慢慢来”），或用 mentorly train text "
                f"训练一个模型")
    return (f"'{negated}' is the negation of '{base}': zero-shot classification cannot tell a "
            f"label from its negation, so no answer is given. Name the opposite instead (e.g. "
            f"'urgent' / 'can wait'), or train a model with `mentorly train text`")


def _summary(prediction: Prediction, method: str, lang: str = "en") -> str:
    """What the step shows and the model reads, in the learner's language."""
    if lang == "zh":
        how = METHOD_ZH.get(method, method)
        if prediction.label == UNCERTAIN:
            return (f"无法确定（{how}）；最可能是 {prediction.best_guess}，"
                    f"置信度 {prediction.confidence:.2f}")
        return f"{prediction.label}（{how}，置信度 {prediction.confidence:.2f}）"
    if prediction.label == UNCERTAIN:
        return (f"uncertain ({method}); best guess: {prediction.best_guess} "
                f"at {prediction.confidence:.2f}")
    return f"{prediction.label} ({method}, confidence {prediction.confidence:.2f})"


def run_classification(text: str, labels: list[str] | None = None, model: str | None = None,
                       multi_label: bool = False, settings: Any = None,
                       language: str = "en", tenant: str | None = None) -> ToolResult:
    """The tool's body, callable without a ``ToolContext``. A named ``model`` is looked up
    among ``tenant``'s models (default: the settings' default tenant) and the shared presets.

    Bad arguments (an empty text, labels that are not a list of 2 or more distinct strings, an
    invalid or unknown model name) raise ``ToolError`` with the reason in English and Chinese:
    the agent shows a ``ToolError`` to the learner and treats anything else as a crash."""
    try:
        return _classify(text, labels, model, multi_label, settings, language, tenant)
    except (InvalidInput, NotFound) as exc:
        raise ToolError(exc.message, zh=exc.zh) from None


def _classify(text: str, labels: list[str] | None, model: str | None, multi_label: bool,
              settings: Any, language: str, tenant: str | None) -> ToolResult:
    # ``run_classification`` called without a context (a script, the CLI): the process's settings
    settings = settings if settings is not None else get_settings()
    tenant = tenant or getattr(settings, "default_tenant", None) or "default"
    if isinstance(model, str) and not model.strip():
        model = None  # a blank name is no name: the default (sentiment or zero-shot)
    cleaned, truncated = clean_text(text)
    notices: list[str] = []
    negation = ""
    if truncated:
        notices.append(f"the text was truncated to its first {MAX_CLASSIFY_CHARS} characters "
                       f"(of {len(text)})")
    embedder = _embedder(settings)
    if model is not None and labels:
        notices.append("labels were ignored because a trained model was named")
    if model is not None:
        trained = trained_model(settings, check_name(model), tenant)
        if trained is None:  # another tenant's model of that name is not named either
            raise ToolError(f"no text model named {shown(model)}; train one with "
                            f"`mentorly train text FILE --name {model}`",
                            zh=f"没有名为 {shown(model)} 的文本模型；可以用 "
                               f"`mentorly train text FILE --name {model}` 训练一个")
        prediction, method = _predict_trained(trained, embedder, cleaned), "custom"
        provenance = (f"text-model:{trained.name}", f"v{trained.version}")
    elif labels:
        if multi_label and len(labels) < 2:
            raise InvalidInput("multi-label classification needs at least 2 labels",
                               zh="多标签分类至少需要 2 个标签")
        clf = zero_shot_classifier(embedder)
        prediction = clf.predict(cleaned, labels, multi_label=multi_label)
        method = "zero-shot"
        pairs = negated_pairs([name for name, _ in prediction.scores])  # labels, deduplicated
        if pairs and not multi_label:
            prediction = replace(prediction, label=UNCERTAIN)
            negation = _negation_notice(pairs[0], language)
            notices.append(negation)
        provenance = (f"{clf.name}:{embedder.name}", clf.version)
    else:
        sentiment = trained_model(settings, SENTIMENT)
        if sentiment is None:
            log.warning("sentiment model not prepared; falling back to zero-shot sentiment")
            notices.append("the trained sentiment model is not prepared (run `mentorly models "
                           "prepare`); zero-shot sentiment was used instead")
            clf = zero_shot_classifier(embedder)
            prediction = clf.predict(cleaned, ["positive", "negative"])
            method = "zero-shot sentiment"
            provenance = (f"{clf.name}:{embedder.name}", clf.version)
        else:
            prediction, method = _predict_trained(sentiment, embedder, cleaned), "sentiment"
            provenance = (f"text-model:{SENTIMENT}", f"v{sentiment.version}")
    data = {**prediction.to_dict(), "method": method, "language": detect_language(cleaned),
            "truncated": truncated}
    if notices:
        data["notice"] = "; ".join(notices)
    summary = _summary(prediction, method, language)
    if negation:  # no best guess: it would be a coin toss read as an answer
        summary = (f"无法确定（{METHOD_ZH[method]}）。" if language == "zh"
                   else f"uncertain ({method}). ") + negation
    return ToolResult(data=data, summary=summary, model=provenance[0],
                      model_version=provenance[1], confidence=round(prediction.confidence, 4))


@tool(name="classify_text", examples=EXAMPLES, version=TOOL_VERSION, capability="text",
      extractor=extract_arguments)
def classify_text(text: str, labels: list[str] | None = None, model: str | None = None,
                  multi_label: bool = False,
                  context: ToolContext = None) -> ToolResult:  # type: ignore[assignment]
    """Classify a short text (a comment, a question, feedback) in English or Chinese.

    Give `labels` (2 or more candidate categories, in any language) to choose among them
    (name opposites, e.g. 'urgent' / 'can wait': a label and its negation get no answer);
    give no labels for sentiment (positive or negative); give `model` to use a classifier
    trained with `mentorly train text`. `multi_label` scores each label on its own.
    The result has the label ("uncertain" when no label is clearly ahead), the confidence,
    and the scores of the top labels.
    """
    return run_classification(text, labels=labels, model=model, multi_label=multi_label,
                              settings=context.settings if context is not None else None,
                              language=getattr(context, "language", None) or "en",
                              tenant=getattr(context, "tenant", None))
