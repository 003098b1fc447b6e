"""Deterministic argument extraction for ``classify_text``.

From a request such as ``这条评论是正面还是负面的？“老师讲课太快。”`` or
``Classify 'X' into math, history or biology`` it pulls the quoted text (the longest quotation;
without quotes, what follows the first colon or else the first question mark), then the
candidate labels from the rest:

1. an explicit list (``a, b or c``, ``甲、乙或丙``, ``甲还是乙``, in brackets or after a colon or
   a word such as "into"); if every label is a sentiment word, no labels (the sentiment model);
2. otherwise a sentiment cue → no labels; a preset cue ("subject", "学科", "feedback type",
   "反馈") → that preset's label names in the text's language;
3. nothing recognisable → ``{}``, and the agent asks the LLM for schema-constrained arguments.
"""

from __future__ import annotations

import re
from typing import Any

from .language import detect_language
from .presets import FEEDBACK, SENTIMENT, SUBJECT, normalise_label

# Quotation pairs, most specific first; 《》 are book titles, used only when nothing else is quoted.
_QUOTES = [
    re.compile(r"“([^”]+)”"),
    re.compile(r"「([^」]+)」"),
    re.compile(r"『([^』]+)』"),
    re.compile(r"‘([^’]+)’"),
    re.compile(r'"([^"]+)"'),
    # English single quotes: opened after a boundary, closed before one, so "can't" survives.
    re.compile(r"(?:(?<=^)|(?<=[\s:：(（\[]))'(.+?)'(?=$|[\s.,;:!?)）\]。，？！])"),
]
_TITLE = re.compile(r"《([^》]+)》")

_SENTIMENT_CUE = re.compile(
    r"sentiment|positive|negative|happy or sad|good or bad|\btone\b|\bmood\b|emotion|"
    r"情感|情绪|正面|负面|好评|差评|积极|消极|褒义|贬义|正向|负向|满意还是不满意|开心还是难过",
    re.IGNORECASE)
_SUBJECT_CUE = re.compile(r"subject|discipline|\btopic|学科|科目|主题|哪一科|哪门课|话题", re.I)
_FEEDBACK_CUE = re.compile(r"feedback|反馈|留言类型|意见类型", re.IGNORECASE)
_MULTI_CUE = re.compile(r"all that apply|multiple labels|more than one|multi-?label|可多选|多选|多个标签",
                        re.IGNORECASE)
_MODEL_CUE = re.compile(
    r"(?:using|with|by)\s+(?:the\s+|my\s+|our\s+)?(?:model|classifier)\s+[\"'“‘]?([A-Za-z0-9][\w.-]*)"
    r"|(?:用|使用|通过)(?:模型|分类器)\s*[\"'“‘「]?([A-Za-z0-9][\w.-]*)",
    re.IGNORECASE)

_SEPARATORS = re.compile(r"\s*(?:,|，|、|/|;|；|\bor\b|\band\b|或者|或是|或|还是|以及)\s*", re.I)
_HAS_SEPARATOR = re.compile(r",|，|、|/|\bor\b|或|还是", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.?!。？！\n]")
_EN_LIST_AFTER = re.compile(
    r"\b(?:into|as|between|among|from|about|labels?|categories|classes|options|belongs? to|"
    r"fits?|either)\b\s*[:：]?\s*(.+)", re.IGNORECASE)
_EN_OR_LIST = re.compile(r"\b((?:[\w-]+,\s*)*[\w-]+,?\s+or\s+[\w-]+)\b", re.IGNORECASE)
_BRACKETS = re.compile(r"[(（\[【]([^()（）\[\]【】]+)[)）\]】]")
_ZH_LEAD = re.compile(r"^.*(?:是|属于|为|于|成|到|算|选|从|在)")
_ZH_TAIL = re.compile(r"(?:的|吗|呢|呀|啊|吧|类|类别|题|方面|哪个|哪一个|哪一类)+$")
_EN_STOP = {"the", "a", "an", "either", "is", "it", "this", "that", "of", "into", "as", "be"}
MAX_LIST_ITEMS = 30


def _find_text(message: str) -> tuple[str, str] | None:
    """(text, instruction with the text removed), or None when no text can be found."""
    spans: list[tuple[int, int, str]] = []
    for pattern in _QUOTES:
        spans += [(m.start(), m.end(), m.group(1)) for m in pattern.finditer(message)]
    if not spans:
        spans = [(m.start(), m.end(), m.group(1)) for m in _TITLE.finditer(message)]
    spans = [s for s in spans if s[2].strip()]
    if spans:
        start, end, text = max(spans, key=lambda s: len(s[2]))
        return text.strip(), message[:start] + " " + message[end:]
    colon = re.search(r"[:：]", message)
    if colon is None:
        # "这条评论是正面还是负面的？老师讲课太快。": the text follows the question
        question = re.search(r"[?？]", message)
        if question and message[question.end():].strip():
            return message[question.end():].strip(), message[: question.end()]
        return None
    before, after = message[: colon.start()], message[colon.end():].strip()
    # "标签：表扬、投诉或建议。建议每周……": the list comes first, the text after it.
    end = _SENTENCE_END.search(after)
    if end and _HAS_SEPARATOR.search(after[: end.start()]) and after[end.end():].strip():
        head = after[: end.start()]
        if all(len(item) <= 20 for item in _SEPARATORS.split(head)):
            return after[end.end():].strip(), before + ": " + head
    return (after, before) if after else None


def _clean_item(item: str, first: bool, last: bool) -> str:
    item = item.strip(" \t\"'“”‘’「」:：.?!。？！()（）[]【】—–-")
    if re.search(r"[\u4e00-\u9fff]", item):
        if first:
            item = _ZH_LEAD.sub("", item) or item
        if last or len(item) > 2:
            stripped = _ZH_TAIL.sub("", item)
            item = stripped if len(stripped) >= 1 else item
        return item.strip()
    words = item.split()
    while words and words[0].lower() in _EN_STOP:
        words.pop(0)
    while words and words[-1].lower() in _EN_STOP:
        words.pop()
    return " ".join(words)


def _split_list(segment: str) -> list[str] | None:
    if not _HAS_SEPARATOR.search(segment):
        return None
    raw = [p for p in _SEPARATORS.split(segment) if p and p.strip()]
    items = [_clean_item(p, i == 0, i == len(raw) - 1) for i, p in enumerate(raw)]
    items = [i for i in items if i]
    if not 2 <= len(items) <= MAX_LIST_ITEMS:
        return None
    if any(len(i) > 40 or len(i.split()) > 5 for i in items):
        return None
    return items


def _find_labels(instruction: str) -> list[str] | None:
    candidates: list[str] = [m.group(1) for m in _BRACKETS.finditer(instruction)]
    for m in re.finditer(r"[:：]\s*([^:：]+)", instruction):
        candidates.append(_SENTENCE_END.split(m.group(1))[0])
    for m in _EN_LIST_AFTER.finditer(instruction):
        candidates.append(_SENTENCE_END.split(m.group(1))[0])
    candidates += [m.group(1) for m in _EN_OR_LIST.finditer(instruction)]
    candidates += [seg for seg in re.split(r"[，,。？！?!；;：:\n]", instruction)
                   if re.search(r"、|还是|或", seg)]
    for segment in candidates:
        items = _split_list(segment)
        if items:
            return items
    return None


def _is_sentiment_word(label: str) -> bool:
    key = normalise_label(label)
    return any(key in {normalise_label(a) for a in (info.key, info.en, info.zh, *info.aliases)}
               for info in SENTIMENT.labels)


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in items if not (i.lower() in seen or seen.add(i.lower()))]  # type: ignore[func-returns-value]


def extract_arguments(message: str, context: Any = None) -> dict[str, Any]:
    """Arguments for ``classify_text`` from a user's message, or ``{}`` if unsure."""
    if not isinstance(message, str) or not message.strip():
        return {}
    found = _find_text(message.strip())
    if found is None:
        return {}
    text, instruction = found
    if not text:
        return {}
    args: dict[str, Any] = {"text": text}
    model = _MODEL_CUE.search(instruction)
    if model:
        args["model"] = model.group(1) or model.group(2)
        return args
    if _MULTI_CUE.search(instruction):
        args["multi_label"] = True
    lang = detect_language(text)
    labels = _find_labels(instruction)
    if labels:
        if all(_is_sentiment_word(label) for label in labels):
            return {"text": text}  # "positive or negative": the trained sentiment model
        args["labels"] = _dedupe(labels)
        return args if len(args["labels"]) >= 2 else {}
    if _SENTIMENT_CUE.search(instruction):
        return {"text": text}
    if _SUBJECT_CUE.search(instruction):
        args["labels"] = SUBJECT.label_names(lang)
        return args
    if _FEEDBACK_CUE.search(instruction):
        args["labels"] = FEEDBACK.label_names(lang)
        return args
    return {}
