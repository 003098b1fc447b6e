"""One catalogue of what the product says, one ``detect_language``, reasons as codes."""

from __future__ import annotations

import string

import pytest

from assistant.language import detect_language
from assistant.messages import CATALOGUE, say, text
from assistant.reasons import Reason, render, route_fields, with_reasons


def test_every_entry_exists_in_both_languages_with_the_same_placeholders() -> None:
    for section, entries in CATALOGUE.items():
        for key, texts in entries.items():
            assert set(texts) == {"en", "zh"}, (section, key)
            fields = [{f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f}
                      for lang in ("en", "zh")]
            assert fields[0] == fields[1], (section, key)


def test_the_agent_and_the_page_read_the_same_catalogue() -> None:
    from ui.i18n import STRINGS, t

    assert STRINGS is CATALOGUE["ui"]
    assert t("step_reason", "zh-CN") == text("ui", "step_reason", "zh") == "原因："
    assert say("no_passages", "fr") == CATALOGUE["agent"]["no_passages"]["en"]  # unknown: English


def test_the_classifier_uses_the_agent_s_detect_language() -> None:
    from tools.text_classification import language as classifier_language

    assert classifier_language.detect_language is detect_language


@pytest.mark.parametrize("message, expected", [
    ("What is the late homework policy?", "en"),
    ("作业迟交有什么规定？", "zh"),
    ("这门课的 final exam 是什么时候？", "zh"),
    ("Please translate 'thank you' into Chinese", "en"),
    ("12345 !!!", "en"),
])
def test_detect_language(message: str, expected: str) -> None:
    assert detect_language(message) == expected
    assert detect_language("12345", default="zh") == "zh"  # no letters at all: the default


def test_reasons_round_trip_through_a_route_and_render_in_both_languages() -> None:
    route = {"tool": None, **route_fields([Reason.of("classifier_none")])}
    route = with_reasons(route, Reason.of("fallback", tool="knowledge_search"), tool="knowledge_search")
    assert route["tool"] == "knowledge_search"
    assert route["reason"] == "classifier: no tool; fallback: knowledge_search"
    assert route["reasons"] == [{"code": "classifier_none"},
                                {"code": "fallback", "tool": "knowledge_search"}]
    native = Reason.of("native", why=Reason.of("image_attached"))
    assert Reason.from_dict(native.to_dict()) == native
    assert render(native, "zh") == "模型调用工具：附有图片"
    assert render([Reason.of("a_newer_code", x=1)], "zh") == "a_newer_code"  # shown as its code
