"""Every string the chat UI shows, in English and Chinese.

``t(key, lang, **values)`` formats one; a missing key or language is a programming error
(``KeyError``), caught by the tests that walk ``STRINGS``.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "zh"]
LANGUAGES: tuple[Lang, ...] = ("en", "zh")
DEFAULT_LANG: Lang = "en"

# Shown in the language picker; each name is written in its own language.
LANGUAGE_CHOICES: list[tuple[str, str]] = [("English", "en"), ("中文", "zh")]

STRINGS: dict[str, dict[Lang, str]] = {
    "page_title": {"en": "Mentorly", "zh": "Mentorly 学习助手"},
    "title": {"en": "Mentorly", "zh": "Mentorly 学习助手"},
    "subtitle": {
        "en": "Ask about your courses, get study recommendations, or attach an image to have "
              "it identified. Answers cite their sources.",
        "zh": "询问课程内容、获取学习推荐，或附上一张图片让我识别。回答会注明来源。",
    },
    "language_label": {"en": "Language", "zh": "语言"},
    "chatbot_label": {"en": "Conversation", "zh": "对话"},
    "chatbot_placeholder": {
        "en": "**Hello!** How can I help you learn today?",
        "zh": "**你好！** 今天想学点什么？",
    },
    "textbox_placeholder": {
        "en": "Type a question, or attach an image…",
        "zh": "输入问题，或附上一张图片……",
    },
    "example_policy": {
        "en": "What is the late homework policy?",
        "zh": "作业迟交有什么规定？",
    },
    "example_next": {
        "en": "What should I study next?",
        "zh": "我接下来应该学什么？",
    },
    "example_sentiment": {
        "en": "Is this review positive or negative: \"The lectures were clear and fun.\"",
        "zh": "这条评价是正面还是负面：“老师讲得很清楚，课程很有趣。”",
    },
    "step_running": {"en": "Using tool: {tool}", "zh": "正在使用工具：{tool}"},
    "step_done": {"en": "Used tool: {tool}", "zh": "已使用工具：{tool}"},
    "step_failed": {"en": "Tool failed: {tool}", "zh": "工具出错：{tool}"},
    "step_reason": {"en": "Why:", "zh": "原因："},
    "step_arguments": {"en": "Input:", "zh": "输入："},
    "step_result": {"en": "Result:", "zh": "结果："},
    "step_error": {"en": "Error:", "zh": "错误："},
    "provenance_model": {"en": "Model:", "zh": "模型："},
    "provenance_version": {"en": "version", "zh": "版本"},
    "provenance_confidence": {"en": "confidence", "zh": "置信度"},
    "provenance_tool": {"en": "tool version {version}", "zh": "工具版本 {version}"},
    "sources_title": {"en": "Sources ({count})", "zh": "来源（{count}）"},
    "source_score": {"en": "relevance {score}", "zh": "相关度 {score}"},
    "empty_message": {
        "en": "Please type a question or attach an image.",
        "zh": "请输入问题或附上一张图片。",
    },
    "upload_rejected": {
        "en": "I could not use the file **{name}**: {reason} Please attach a different file.",
        "zh": "无法使用文件 **{name}**：{reason} 请换一个文件再试。",
    },
    "error_prefix": {"en": "Sorry, something went wrong: {message}", "zh": "抱歉，出错了：{message}"},
    "error_generic": {
        "en": "Sorry, something went wrong on our side. Please try again.",
        "zh": "抱歉，系统出了点问题，请再试一次。",
    },
    "mode_generated": {
        "en": "*Quoted from the course documents; the summary was checked against them.*",
        "zh": "*引自课程资料；简要回答已与原文核对。*",
    },
    "mode_quoted": {
        "en": "*Quoted from the course documents (no summary passed the fact check).*",
        "zh": "*引自课程资料（没有通过事实核对的简要回答，因此只显示原文）。*",
    },
    "mode_abstained": {
        "en": "*The documents do not answer this, so nothing was guessed.*",
        "zh": "*资料中没有答案，因此没有做任何猜测。*",
    },
    "no_answer": {
        "en": "I have no answer to that yet.",
        "zh": "我暂时无法回答这个问题。",
    },
}

EXAMPLE_KEYS: tuple[str, ...] = ("example_policy", "example_next", "example_sentiment")


def normalize_lang(value: object) -> Lang:
    """Map ``"zh-CN"``, ``"中文"``, ``None``... onto a supported language."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v.startswith("zh") or v == "中文":
            return "zh"
        if v.startswith("en") or v == "english":
            return "en"
    return DEFAULT_LANG


def lang_from_accept_language(header: str | None) -> Lang:
    """The first supported language in an HTTP ``Accept-Language`` header (by q-value)."""
    if not header:
        return DEFAULT_LANG
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANG


def t(key: str, lang: str, **values: object) -> str:
    text = STRINGS[key][normalize_lang(lang)]
    return text.format(**values) if values else text


def examples(lang: str) -> list[str]:
    return [t(k, lang) for k in EXAMPLE_KEYS]
