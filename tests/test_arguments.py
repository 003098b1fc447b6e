"""``grounded_arguments``: LLM-filled tool arguments are kept only when the learner gave them."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from assistant import tool
from assistant.arguments import grounded_arguments, missing_required
from assistant.plugins import load_registry
from assistant.registry import ToolRegistry
from assistant.tooling import Tool

BUG_MESSAGE = "那这句呢：“作业太难了，我快崩溃了”"


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return load_registry(["tools.text_classification", "tools.recommendation"])


@pytest.fixture(scope="module")
def classify(registry: ToolRegistry) -> Tool:
    return registry.get("classify_text")


@pytest.fixture(scope="module")
def recommend(registry: ToolRegistry) -> Tool:
    return registry.get("recommend_resources")


def test_the_reported_bug_values_copied_from_the_docstring_are_dropped(classify: Tool) -> None:
    llm = {"text": "作业太难了，我快崩溃了", "labels": ["urgent", "can wait"],
           "model": "mentorly train text"}
    kept, dropped = grounded_arguments(classify, llm, [BUG_MESSAGE])
    assert kept == {"text": "作业太难了，我快崩溃了"}
    assert dropped == ["labels", "model"]
    assert missing_required(classify, kept) == []


def test_an_invented_required_text_is_reported(classify: Tool) -> None:
    llm = {"text": "The homework is too hard.", "labels": ["urgent", "can wait"]}
    kept, dropped = grounded_arguments(classify, llm, [BUG_MESSAGE])
    assert kept == {} and dropped == ["text", "labels"]
    assert missing_required(classify, kept) == ["text"]


def test_text_from_an_earlier_turn_is_grounded(classify: Tool) -> None:
    history = ["Classify this: “老师讲课太快了，我跟不上”", "这是负面的。"]
    kept, dropped = grounded_arguments(classify, {"text": "老师讲课太快了，我跟不上"},
                                       ["那换成学科呢？", *history])
    assert kept == {"text": "老师讲课太快了，我跟不上"} and dropped == []


@pytest.mark.parametrize("value", [
    "作业太难了，我快崩溃了",
    "作业太难了,我快崩溃了",  # ASCII comma for the full-width one
    "作业太难了",  # a part of the quotation (CJK: by substring)
    "“作业太难了，我快崩溃了”",
])
def test_chinese_text_is_grounded_by_substring(classify: Tool, value: str) -> None:
    assert grounded_arguments(classify, {"text": value}, [BUG_MESSAGE]) == ({"text": value}, [])


def test_chinese_characters_out_of_order_are_not_grounded(classify: Tool) -> None:
    # every character occurs, but not as a run: CJK has no word-by-word rule
    assert grounded_arguments(classify, {"text": "难作业了"}, [BUG_MESSAGE]) == ({}, ["text"])


def test_case_and_whitespace_are_ignored(classify: Tool) -> None:
    message = 'Is "The lecture was   too fast." about maths or physics?'
    value = "the LECTURE was too fast"
    kept, _ = grounded_arguments(classify, {"text": value}, [message])
    assert kept == {"text": value}


def test_grounded_labels_are_kept(classify: Tool) -> None:
    message = "Is 'the lecture was too fast' about math, physics or history?"
    llm = {"text": "the lecture was too fast", "labels": ["Math", "physics", "history"]}
    assert grounded_arguments(classify, llm, [message]) == (llm, [])


def test_ungrounded_labels_are_removed_and_a_single_survivor_is_no_choice(classify: Tool) -> None:
    message = "Is 'the lecture was too fast' about math, physics or history?"
    kept, dropped = grounded_arguments(
        classify, {"text": "the lecture was too fast",
                   "labels": ["math", "physics", "biology"]}, [message])
    assert kept["labels"] == ["math", "physics"] and dropped == []
    kept, dropped = grounded_arguments(
        classify, {"text": "the lecture was too fast", "labels": ["math", "biology"]}, [message])
    assert "labels" not in kept and dropped == ["labels"]


def test_duplicate_and_blank_labels_do_not_count(classify: Tool) -> None:
    message = "Is 'x' about math or physics?"
    kept, dropped = grounded_arguments(classify, {"labels": ["math", "MATH", "", "  "]},
                                       [message])
    assert kept == {} and dropped == ["labels"]


def test_chinese_labels(classify: Tool) -> None:
    message = "这条留言是表扬还是投诉：“老师讲得很清楚”"
    llm = {"text": "老师讲得很清楚", "labels": ["表扬", "投诉"]}
    assert grounded_arguments(classify, llm, [message]) == (llm, [])
    kept, dropped = grounded_arguments(classify, {**llm, "labels": ["表扬", "建议"]}, [message])
    assert kept == {"text": "老师讲得很清楚"} and dropped == ["labels"]


def test_short_values_may_be_grounded_word_by_word(classify: Tool) -> None:
    message = "Is 'the app keeps crashing' a bug report or a feature request?"
    llm = {"text": "the app keeps crashing", "labels": ["bug", "feature request", "request bug"]}
    kept, _ = grounded_arguments(classify, llm, [message])
    assert kept["labels"] == ["bug", "feature request", "request bug"]
    long_value = "the app keeps on crashing"  # five words, not as a run: not grounded
    assert grounded_arguments(classify, {"text": long_value}, [message]) == ({}, ["text"])


def test_a_description_phrase_needs_to_occur_as_a_run(classify: Tool) -> None:
    # "can" and "wait" both occur, but "can wait" is the docstring's example, not the learner's
    message = "Is 'the server is down' urgent, or can it wait?"
    kept, dropped = grounded_arguments(classify, {"text": "the server is down",
                                                  "labels": ["urgent", "can wait"]}, [message])
    assert kept == {"text": "the server is down"} and dropped == ["labels"]
    said = "Is 'the server is down' urgent or can wait?"
    kept, _ = grounded_arguments(classify, {"labels": ["urgent", "can wait"]}, [said])
    assert kept == {"labels": ["urgent", "can wait"]}


def test_model_names_must_be_said(classify: Tool) -> None:
    llm = {"text": "great course", "model": "feedback-v2"}
    said = "Use the model feedback-v2 on 'great course'"
    assert grounded_arguments(classify, llm, [said]) == (llm, [])
    assert grounded_arguments(classify, llm, ["Classify 'great course'"]) == (
        {"text": "great course"}, ["model"])


@pytest.mark.parametrize(("message", "k", "kept"), [
    ("推荐三门课", 3, True),
    ("给我推荐3个学习资源", 3, True),
    ("推荐两门历史课", 2, True),
    ("给我推荐十二门课", 12, True),
    ("Give me three courses", 3, True),
    ("recommend 3 courses", 3, True),
    ("top 12 things to learn", 12, True),
    ("twenty-one resources please", 21, True),
    ("推荐几门课", 3, False),
    ("帮我看一下", 1, False),  # 一 in 一下 is not a number
    ("第三个课程是什么？", 3, False),  # an ordinal
    ("推荐十三门课", 3, False),  # 三 inside 十三
    ("what comes after 2023?", 3, False),
    ("recommend 13 courses", 3, False),
    ("I want 3.5 hours of study", 3, False),
    ("Recommend a course", 5, True),  # the default: the same as leaving it out
])
def test_numbers_are_kept_when_said(recommend: Tool, message: str, k: int, kept: bool) -> None:
    result = grounded_arguments(recommend, {"k": k}, [message])
    assert result == (({"k": k}, []) if kept else ({}, ["k"]))


def test_level_and_subject_copied_from_the_schema_are_dropped(recommend: Tool) -> None:
    llm = {"k": 5, "level": "beginner", "subject": "machine learning"}
    assert grounded_arguments(recommend, llm, ["What should I study next?"]) == (
        {"k": 5}, ["level", "subject"])
    said = "I'm a beginner, what machine learning course should I take?"
    assert grounded_arguments(recommend, llm, [said]) == (llm, [])


def test_booleans_need_a_cue_unless_they_are_the_default(classify: Tool) -> None:
    message = "Is 'x' about math or physics?"
    assert grounded_arguments(classify, {"multi_label": False}, [message]) == (
        {"multi_label": False}, [])
    assert grounded_arguments(classify, {"multi_label": True}, [message]) == (
        {}, ["multi_label"])
    for cue in ("select all that apply", "multi-label please", "可多选"):
        assert grounded_arguments(classify, {"multi_label": True}, [message + " " + cue]) == (
            {"multi_label": True}, [])


def test_nulls_and_unknown_names(classify: Tool) -> None:
    kept, dropped = grounded_arguments(
        classify, {"text": None, "labels": None, "colour": "red", "context": "forged"},
        [BUG_MESSAGE])
    assert kept == {} and dropped == ["text"]  # only a required null is reported


@pytest.mark.parametrize("value", ["", "   ", "“”", "!!!", 0.5, {"a": "作业"}])
def test_empty_and_odd_values_are_dropped(classify: Tool, value: Any) -> None:
    assert grounded_arguments(classify, {"text": value}, [BUG_MESSAGE]) == ({}, ["text"])


def test_not_an_object_gives_nothing(classify: Tool) -> None:
    assert grounded_arguments(classify, ["text"], [BUG_MESSAGE]) == ({}, [])  # type: ignore[arg-type]
    assert grounded_arguments(classify, {"text": "作业太难了"}, []) == ({}, ["text"])


def test_schema_examples_and_descriptions_are_never_copied() -> None:
    @tool
    def explain_topic(
        topic: Annotated[str, Field(description="a topic such as photosynthesis",
                                    examples=["cell division"])],
        depth: Annotated[int, Field(ge=1, le=5, description="detail from 1 to 5")] = 2,
    ) -> str:
        """Explain a science topic, e.g. the water cycle."""
        return topic

    for copied in ("photosynthesis", "cell division", "the water cycle"):
        assert grounded_arguments(explain_topic, {"topic": copied}, ["Explain this please"]) == (
            {}, ["topic"])
    assert grounded_arguments(explain_topic, {"topic": "cell division", "depth": 5},
                              ["Explain cell division in depth 5"]) == (
        {"topic": "cell division", "depth": 5}, [])


def test_a_plain_string_is_one_text(classify: Tool) -> None:
    assert grounded_arguments(classify, {"text": "作业太难了"}, BUG_MESSAGE) == (  # type: ignore[arg-type]
        {"text": "作业太难了"}, [])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300)
    | st.floats(allow_nan=True) | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=10)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(arguments=st.dictionaries(st.sampled_from(["text", "labels", "model", "multi_label", "x"]),
                                 _json, max_size=5),
       texts=st.lists(st.text(st.characters(exclude_categories=()), max_size=40), max_size=3))
def test_any_json_gives_a_subset_and_never_raises(arguments: dict[str, Any],
                                                  texts: list[str]) -> None:
    classify = load_registry(["tools.text_classification"]).get("classify_text")
    kept, dropped = grounded_arguments(classify, arguments, texts)
    assert set(kept) <= set(arguments) - {"x"} and not set(kept) & set(dropped)
    assert set(dropped) <= set(arguments)
