"""General requests and course items: the cues that overrule the router's classifier."""

from __future__ import annotations

import pytest

from assistant.intents import is_general_request, names_course_item


@pytest.mark.parametrize("message", [
    "Write a short poem about learning.", "Can you write a polite email to my lecturer?",
    "Explain recursion with an example", "Brainstorm five project ideas for a Python beginner",
    "Help me plan my week", "Tell me a short story about a learner who studies every evening.",
    "帮我制定这周的学习计划", "把这句话翻译成英文：“祝你好运”", "帮我把这句话改得礼貌一点：“快点发成绩”",
    "给我讲个关于坚持学习的小故事", "解释一下什么是递归"])
def test_general_requests(message: str) -> None:
    assert is_general_request(message)


@pytest.mark.parametrize("message", [
    "What should I study next?", "Recommend me a course please", "给我推荐几门课",
    "Where is the final exam?", "这句话是什么情感：“老师讲得太好了”", "How much is the tuition?",
    "Classify this comment: great lecture", "Hello!"])
def test_not_general_requests(message: str) -> None:
    assert not is_general_request(message)


def test_course_items() -> None:
    assert names_course_item("ML201第一周学什么？") and names_course_item("What does week 5 cover?")
    assert names_course_item("Where is CH-110?") and not names_course_item("What should I study next?")
    assert names_course_item("ML201第一周学什么？") and names_course_item("CS214期中考试在哪？")
