"""Zero-shot text classification on the real multilingual embedder, through the tool."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assistant import ToolContext, ToolError
from assistant.config import load_settings
from assistant.errors import InvalidInput
from tools.text_classification.presets import SUBJECT, load_eval_set
from tools.text_classification.tool import classify_text, zero_shot_classifier
from tools.text_classification.zero_shot import (
    MAX_LABELS,
    UNCERTAIN,
    ZeroShotClassifier,
    dedupe_labels,
    negated_pairs,
    softmax,
)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> ToolContext:
    settings = load_settings(home=tmp_path_factory.mktemp("text-home"))
    return ToolContext(tenant="t", user="u", settings=settings)


@pytest.fixture(scope="module")
def classifier(context: ToolContext) -> ZeroShotClassifier:
    from knowledge.embedders import shared_embedder

    s = context.settings
    return zero_shot_classifier(shared_embedder(s.embedder.name, s.embedder.threads))


def call(context: ToolContext, **arguments: Any) -> dict[str, Any]:
    result = classify_text.invoke(arguments, context)
    assert result.model and result.model_version and result.confidence is not None
    return result.data


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_subject_preset_accuracy(classifier: ZeroShotClassifier, lang: str) -> None:
    items = load_eval_set("subject", lang)
    names = SUBJECT.label_names(lang)
    keys = [label.key for label in SUBJECT.labels]
    sims = classifier.similarities([i["text"] for i in items], names)
    predicted = [keys[int(s.argmax())] for s in sims]
    accuracy = float(np.mean([p == i["label"] for p, i in zip(predicted, items, strict=True)]))
    assert len(items) >= 40
    assert accuracy >= 0.85, f"{lang} subject accuracy {accuracy:.2f}"


def test_tool_answers_with_calibrated_scores(context: ToolContext) -> None:
    data = call(context, text="How do I write a for loop in Python?",
                labels=["programming", "history", "music"])
    assert data["label"] == "programming" and data["method"] == "zero-shot"
    scores = [s["score"] for s in data["scores"]]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-3)
    assert data["confidence"] == scores[0] > 0.5


def test_labels_in_another_language_than_the_text(context: ToolContext) -> None:
    # labels outside the presets, so nothing but the multilingual embedder bridges the languages
    assert call(context, text="明天会下大雨，记得带伞。",
                labels=["weather", "cooking", "sports"])["label"] == "weather"
    assert call(context, text="Preheat the oven and whisk the eggs with the sugar.",
                labels=["天气", "烹饪", "体育"])["label"] == "烹饪"
    assert call(context, text="Who was the first emperor of the Qin dynasty?",
                labels=["数学", "历史", "音乐"])["label"] == "历史"


def test_duplicate_labels_are_merged(context: ToolContext) -> None:
    data = call(context, text="The French Revolution began in 1789.",
                labels=["history", "History", " history ", "music", ""])
    assert [s["label"] for s in data["scores"]] in (["history", "music"], ["music", "history"])
    assert data["label"] == "history"


def test_custom_labels_without_descriptions(context: ToolContext) -> None:
    data = call(context, text="The goalkeeper saved a penalty in the last minute of the match.",
                labels=["weather", "cooking", "sports", "travel"])
    assert data["label"] == "sports"


def test_multi_label_scores_each_label(context: ToolContext) -> None:
    data = call(context, text="Write a Python program that solves quadratic equations.",
                labels=["programming", "mathematics", "art", "history"], multi_label=True)
    assert "programming" in data["labels"]
    assert "art" not in data["labels"] and "history" not in data["labels"]
    assert sum(s["score"] for s in data["scores"]) > 1.0  # independent, not a distribution


def test_long_text_is_truncated_with_a_notice(context: ToolContext) -> None:
    text = "Newton's laws describe how forces change motion. " * 21_000  # ~1 MB
    assert len(text) > 1_000_000
    data = call(context, text=text, labels=["physics", "literature"])
    assert data["truncated"] is True and "truncated" in data["notice"]
    assert data["label"] == "physics"


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"text": "", "labels": ["a", "b"]}, ToolError, "empty"),
    ({"text": "   \n\t ", "labels": ["a", "b"]}, ToolError, "empty"),
    ({"text": "\x00\u200b", "labels": ["a", "b"]}, ToolError, "empty"),
    ({"text": "hello", "labels": ["only"]}, ToolError, "at least 2"),
    ({"text": "hello", "labels": ["same", "SAME"]}, ToolError, "at least 2"),
    ({"text": "hello", "labels": [f"label {i}" for i in range(500)]}, ToolError,
     "too many labels"),
    ({"text": "hello", "labels": "math"}, InvalidInput, "labels"),  # the schema's check
])
def test_bad_input_is_a_clear_error(context: ToolContext, arguments: dict[str, Any],
                                    error: type[Exception], message: str) -> None:
    """The tool's own checks raise ``ToolError`` (shown to the learner, in their language);
    only the schema check in ``validate`` raises ``InvalidInput``."""
    with pytest.raises(error, match=message) as raised:
        classify_text.invoke(arguments, context)
    if error is ToolError:
        assert raised.value.zh  # type: ignore[attr-defined]


def test_unknown_custom_model_is_a_tool_error(context: ToolContext) -> None:
    with pytest.raises(ToolError, match="no text model named 'nope'"):
        classify_text.invoke({"text": "hi", "model": "nope"}, context)
    with pytest.raises(ToolError, match="invalid model name"):
        classify_text.invoke({"text": "hi", "model": "../etc"}, context)


def test_uncertain_when_no_label_is_clearly_ahead(classifier: ZeroShotClassifier) -> None:
    labels = ["a", "b", "c"]
    close = classifier.decide(np.array([0.801, 0.800, 0.799]), labels, multi_label=False)
    assert close.label == UNCERTAIN and close.best_guess == "a"
    clear = classifier.decide(np.array([0.86, 0.80, 0.79]), labels, multi_label=False)
    assert clear.label == "a" and clear.confidence > 0.9


def test_label_limits() -> None:
    assert dedupe_labels(["x", "y"] * 3) == ["x", "y"]
    assert len(dedupe_labels([f"l{i}" for i in range(MAX_LABELS)])) == MAX_LABELS
    p = softmax(np.array([0.8, 0.7]))
    assert p.sum() == pytest.approx(1.0) and p[0] > p[1]


@pytest.mark.parametrize("labels, pairs", [
    (["urgent", "not urgent"], [("urgent", "not urgent")]),
    (["A question", "not a question", "a complaint"], [("A question", "not a question")]),
    (["紧急", "不紧急"], [("紧急", "不紧急")]),
    (["正确", "不是正确"], [("正确", "不是正确")]),
    (["fiction", "non-fiction"], []),  # a word of its own, which the embedder knows
    (["notes", "not notes", "nothing"], [("notes", "not notes")]),
    (["not urgent", "can wait"], []),  # no base label to confuse it with
])
def test_negated_labels_are_found(labels: list[str], pairs: list[tuple[str, str]]) -> None:
    assert negated_pairs(labels) == pairs


def test_a_label_and_its_negation_get_no_answer_but_advice(context: ToolContext) -> None:
    text = "Please help, the exam starts in ten minutes and I cannot log in!"
    result = classify_text.invoke({"text": text, "labels": ["urgent", "not urgent"]}, context)
    assert result.data["label"] == "uncertain" and "negation of 'urgent'" in result.data["notice"]
    assert result.summary.startswith("uncertain (zero-shot). 'not urgent' is the negation")
    assert "best guess" not in result.summary and "can wait" in result.summary
    zh = ToolContext(tenant=context.tenant, user=context.user, settings=context.settings, language="zh")
    chinese = classify_text.invoke({"text": "考试马上开始了我登录不了", "labels": ["紧急", "不紧急"]}, zh)
    assert chinese.data["label"] == "uncertain" and "“不紧急”是“紧急”的否定" in chinese.summary
    rephrased = classify_text.invoke({"text": text, "labels": ["urgent", "can wait"]}, context)
    assert rephrased.data["label"] == "urgent" and "notice" not in rephrased.data
