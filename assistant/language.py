"""Language of a message (English or Chinese) and the few sentences the agent says itself."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def detect_language(text: str, default: str = "en") -> str:
    """``zh`` when CJK ideographs make up a fair share of the letters, else ``en``."""
    cjk = len(_CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    if cjk == 0 and latin == 0:
        return default
    return "zh" if cjk * 3 >= latin else "en"


MESSAGES: dict[str, dict[str, str]] = {
    "tool_failed": {
        "en": "Sorry, the {tool} tool could not finish: {reason}",
        "zh": "抱歉，{tool} 工具未能完成：{reason}",
    },
    "tool_crashed": {
        "en": "Sorry, something went wrong while running the {tool} tool. Please try again later.",
        "zh": "抱歉，运行 {tool} 工具时出了问题，请稍后再试。",
    },
    "tool_timeout": {
        "en": "Sorry, the {tool} tool took too long (over {seconds:.0f} s) and was stopped.",
        "zh": "抱歉，{tool} 工具运行超时（超过 {seconds:.0f} 秒），已停止。",
    },
    "bad_arguments": {
        "en": "Sorry, I could not work out what to pass to the {tool} tool: {reason}",
        "zh": "抱歉，我没能确定要交给 {tool} 工具的内容：{reason}",
    },
    "identity_fixed": {
        "en": ("I cannot switch to another learner: this conversation runs as {user}, as set by "
               "the app or page you signed in with. Anything I show is for {user}."),
        "zh": "我不能切换到其他学习者：本次对话的身份是 {user}，由你登录所用的应用或页面设定。"
              "我展示的内容都是 {user} 的。",
    },
    "no_passages": {
        "en": "I could not find anything about this in the documents I can search, so I won't guess.",
        "zh": "我在可检索的资料中没有找到相关内容，所以不做猜测。",
    },
    "not_in_documents": {
        "en": "The course documents I can search don't answer this, so I won't guess.",
        "zh": "我能检索到的课程资料没有回答这个问题，所以不做猜测。",
    },
    "related_reading": {
        "en": "Closest passages, as related reading:",
        "zh": "最接近的相关内容，可供参考：",
    },
    "quote_intro": {
        "en": "The course documents say:",
        "zh": "课程资料中写道：",
    },
    "summary_intro": {
        "en": "In short: ",
        "zh": "简而言之：",
    },
    "llm_failed": {
        "en": "Sorry, the language model is not available right now: {reason}",
        "zh": "抱歉，语言模型暂时不可用：{reason}",
    },
}


def say(key: str, language: str, **kwargs: object) -> str:
    texts = MESSAGES[key]
    return texts.get(language, texts["en"]).format(**kwargs)
