"""Every sentence the product says itself, in English and Chinese: one catalogue, in sections.

- ``agent``: what the agent says in an answer (``say``);
- ``reasons``: why a turn was routed as it was (rendered by ``assistant.reasons``);
- ``ui``: the chat page's labels and notices (``ui.i18n.t``).

``text(section, key, lang, **values)`` formats one entry; a missing section or key is a
programming error (``KeyError``), caught by the tests that walk ``CATALOGUE``. A language the
catalogue lacks falls back to English. Every entry has the same placeholders in both languages.
"""

from __future__ import annotations

from assistant.language import DEFAULT_LANGUAGE, Language, normalize_language

Entries = dict[str, dict[Language, str]]

AGENT: Entries = {
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
    "queued": {
        "en": ("Many learners are asking right now. You are number {position} in line; your "
               "answer should start in about {seconds} s."),
        "zh": "现在提问的同学很多。你排在第 {position} 位，大约 {seconds} 秒后开始回答。",
    },
    "queued_next": {
        "en": "Many learners are asking right now. Your turn is next (about {seconds} s).",
        "zh": "现在提问的同学很多。下一个就轮到你（大约 {seconds} 秒）。",
    },
    "busy": {
        "en": "Many learners are asking right now. Please try again in {seconds} s.",
        "zh": "现在提问的同学很多，请在 {seconds} 秒后再试。",
    },
    "busy_waited": {
        "en": "Many learners are asking right now and the line did not move in time. Please try "
              "again in {seconds} s.",
        "zh": "现在提问的同学很多，排队时间过长，请在 {seconds} 秒后再试。",
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

# One entry per ``Reason.code`` (``assistant.reasons``); the English forms are the route
# reasons API clients have always read.
REASONS: Entries = {
    # the router
    "image_attached": {"en": "image attached", "zh": "附有图片"},
    "empty_message": {"en": "empty message", "zh": "消息为空"},
    "classifier": {"en": "classifier", "zh": "意图分类器选中"},
    "classifier_none": {"en": "classifier: no tool", "zh": "意图分类：不需要工具"},
    "needs_image": {"en": "{tool} needs an image; none attached", "zh": "{tool} 需要图片，但没有附图"},
    "below_threshold": {
        "en": "below threshold {threshold:g} ({tool} {confidence:.2f})",
        "zh": "置信度低于阈值 {threshold:g}（{tool} {confidence:.2f}）",
    },
    # the router vetting a model's own tool call (native mode)
    "router": {"en": "router {confidence:.2f}", "zh": "路由置信度 {confidence:.2f}"},
    "no_image": {"en": "no image attached", "zh": "没有附图"},
    "unknown_tool": {"en": "unknown tool {tool!r}", "zh": "未知的工具 {tool!r}"},
    "invalid_arguments": {"en": "{detail}", "zh": "{detail}"},
    "not_grounded_empty": {"en": "{tool} is not grounded: empty message",
                           "zh": "{tool} 没有依据：消息为空"},
    "not_grounded": {
        "en": "{tool} is not grounded in the message (router {confidence:.2f} < {minimum:g})",
        "zh": "{tool} 在消息中没有依据（路由置信度 {confidence:.2f} < {minimum:g}）",
    },
    # the agent
    "no_tools": {"en": "no tools registered", "zh": "没有可用的工具"},
    "native": {"en": "native: {why}", "zh": "模型调用工具：{why}"},
    "router_choice": {"en": " ({tool} {confidence:.2f})", "zh": "（{tool} {confidence:.2f}）"},
    "router_tool": {"en": " ({tool})", "zh": "（{tool}）"},
    "general_no_tool": {"en": "general request: no tool", "zh": "一般性请求：不使用工具"},
    "general_direct": {"en": "general request: answered without a tool",
                       "zh": "一般性请求：不使用工具直接回答"},
    "course_item": {"en": "names a course or week: the documents, not recommendations",
                    "zh": "提到了课程或周次：查资料，而不是推荐"},
    "fallback": {"en": "fallback: {tool}", "zh": "改用 {tool} 查找"},
    "nothing_relevant": {"en": "nothing relevant", "zh": "没有找到相关内容"},
    "follow_up": {"en": "follow-up of the previous turn ({tool})", "zh": "接着上一轮（{tool}）"},
    # shown between the parts of a route's reasons
    "separator": {"en": "; ", "zh": "；"},
}

UI: Entries = {
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

CATALOGUE: dict[str, Entries] = {"agent": AGENT, "reasons": REASONS, "ui": UI}


def text(section: str, key: str, lang: object, **values: object) -> str:
    """One entry of ``section`` in ``lang`` (``"zh-CN"`` and the like accepted), formatted with
    ``values`` when given."""
    texts = CATALOGUE[section][key]
    template = texts.get(normalize_language(lang), texts[DEFAULT_LANGUAGE])
    return template.format(**values) if values else template


def say(key: str, language: str, **values: object) -> str:
    """What the agent says itself (section ``agent``) in the learner's ``language``."""
    return text("agent", key, language, **values)
