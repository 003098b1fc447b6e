"""The deterministic argument extractor of ``classify_text`` (no models involved)."""

from __future__ import annotations

import pytest

from tools.text_classification.extraction import extract_arguments
from tools.text_classification.presets import FEEDBACK, SUBJECT

SUBJECT_ZH = SUBJECT.label_names("zh")
SUBJECT_EN = SUBJECT.label_names("en")


@pytest.mark.parametrize(("message", "expected"), [
    # sentiment questions: no labels, so the trained sentiment model answers
    ("这条评论是正面还是负面的？“老师讲课太快。”", {"text": "老师讲课太快。"}),
    ("Is this comment positive or negative? 'The homework took forever.'",
     {"text": "The homework took forever."}),
    ("Detect the sentiment: 'What a wonderful explanation, thank you!'",
     {"text": "What a wonderful explanation, thank you!"}),
    ("这句评价是好评还是差评：“课程内容很充实。”", {"text": "课程内容很充实。"}),
    ("分析这条留言的情感：「作业太多了，根本做不完。」", {"text": "作业太多了，根本做不完。"}),
    ("Does this sound happy or sad: \"I failed the test again.\"", {"text": "I failed the test again."}),
    # explicit label lists, in every separator style
    ("Classify 'The derivative of x^2 is 2x' into math, history or biology",
     {"text": "The derivative of x^2 is 2x", "labels": ["math", "history", "biology"]}),
    ("请给这条反馈打个标签：表扬、投诉或建议。“建议每周多安排一次答疑。”",
     {"text": "建议每周多安排一次答疑。", "labels": ["表扬", "投诉", "建议"]}),
    ("Classify this question by subject (chemistry, geography, music): 'What is a mole?'",
     {"text": "What is a mole?", "labels": ["chemistry", "geography", "music"]}),
    ("这句话属于物理还是化学？「电流的单位是安培」",
     {"text": "电流的单位是安培", "labels": ["物理", "化学"]}),
    ("这条评论是正面、负面还是中性？‘还行吧，一般般。’",
     {"text": "还行吧，一般般。", "labels": ["正面", "负面", "中性"]}),
    ("Label this as urgent or not urgent: \"The server is down and we can't log in\"",
     {"text": "The server is down and we can't log in", "labels": ["urgent", "not urgent"]}),
    ("请把这句话分到以下类别之一：数学、语文、英语。“背诵课文第三段”",
     {"text": "背诵课文第三段", "labels": ["数学", "语文", "英语"]}),
    ("这条评论是正面还是负面的？老师讲课太快。", {"text": "老师讲课太快。"}),
    ("Is this a question about maths or music? How many beats are in a bar?",
     {"text": "How many beats are in a bar?", "labels": ["maths", "music"]}),
    ("Is this about cats or dogs: it barks all night",
     {"text": "it barks all night", "labels": ["cats", "dogs"]}),
    ("Sort 'Thanks!' into praise, praise or complaint",
     {"text": "Thanks!", "labels": ["praise", "complaint"]}),
    # preset words: the preset's label names, in the text's language
    ("这道题属于哪个学科：“二氧化碳的分子式是什么？”",
     {"text": "二氧化碳的分子式是什么？", "labels": SUBJECT_ZH}),
    ("Tag this sentence with a topic: 'Mitochondria are the powerhouse of the cell.'",
     {"text": "Mitochondria are the powerhouse of the cell.", "labels": SUBJECT_EN}),
    ("Put this feedback into a category: 'Please add more practice problems.'",
     {"text": "Please add more practice problems.", "labels": FEEDBACK.label_names("en")}),
    ("这条反馈属于什么类型？“可以多讲一些例题吗？”",
     {"text": "可以多讲一些例题吗？", "labels": FEEDBACK.label_names("zh")}),
    # a named model, and multi-label
    ("Classify \"I can't find the syllabus\" with my model helpdesk-v2",
     {"text": "I can't find the syllabus", "model": "helpdesk-v2"}),
    ("Which labels apply (select all that apply): math, music, physics — 'Pythagoras studied "
     "the ratios of musical intervals'",
     {"text": "Pythagoras studied the ratios of musical intervals", "multi_label": True,
      "labels": ["math", "music", "physics"]}),
])
def test_extracts_text_and_labels(message: str, expected: dict[str, object]) -> None:
    assert extract_arguments(message, None) == expected


@pytest.mark.parametrize("message", [
    "Hello there", "Recommend me a course", "期中考试是什么时候？", "", "   ",
    "Classify this: 'hello'",  # no hint of which labels: the LLM fills the arguments
    "“”",
])
def test_returns_nothing_when_unsure(message: str) -> None:
    assert extract_arguments(message, None) == {}


def test_longest_quotation_is_the_text() -> None:
    args = extract_arguments("Is 'The lab was a mess and nobody helped us' about 'safety' or "
                             "'teamwork'?", None)
    assert args["text"] == "The lab was a mess and nobody helped us"
    assert args["labels"] == ["safety", "teamwork"]


def test_apostrophes_inside_single_quotes_survive() -> None:
    args = extract_arguments("Is this positive or negative: 'I can't believe how good it's been'",
                             None)
    assert args == {"text": "I can't believe how good it's been"}


def test_arguments_validate_against_the_tool_schema() -> None:
    from tools.text_classification.tool import classify_text

    args = extract_arguments("Classify 'x = 2' into math or art", None)
    assert classify_text.validate(args)["labels"] == ["math", "art"]
