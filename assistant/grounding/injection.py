"""Instruction-like sentences in documents: text that talks to the assistant, not to the learner.

A course document tells learners what to do ("submit by Friday"); it has no reason to tell an
AI assistant what to reply, to ignore its rules, or to "tell the learner" something. Such a
sentence is never evidence: it is not quoted, not given to the model, and cannot be the
answer. The patterns aim at the assistant (its role, its instructions, its reply) so that a
syllabus's own rules for students stay evidence ("Answer three of the five questions").
"""

from __future__ import annotations

import re

from assistant.grounding.sentences import split_sentences
from knowledge.sanitize import has_control_tokens

_ASSISTANT = r"(?:ai|a\.i\.|assistant|chat ?bot|bot|language model|llm|gpt|mentorly)"
"""Not "model": "the model must be trained" is machine learning, not an instruction."""
_EN = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.!?\n]{0,40}"
    r"\b(?:instructions?|prompts?|rules|directions|guidelines|guardrails|above|everything)\b"
    r"|\b(?:previous|prior|earlier|above|secret|hidden)\s+(?:system\s+)?"
    r"(?:instructions?|prompts?|directives?)\b"
    r"|\b(?:system|developer|admin)\s*(?:prompt|message|instructions?|override|mode)\b"
    r"|^\s*(?:#+\s*)?(?:system|assistant|developer)\s*[:>\]]"
    r"|\[\s*(?:system|admin|instructions?|assistant)\s*\]"
    r"|\b(?:reply|respond|answer)\b\s+(?:only\s+|exactly\s+|just\s+|simply\s+|verbatim\s+)?"
    r"(?:with\s+|the\s+words?\s+|the\s+phrase\s+|this:?\s*)?[\"“'‘«]"
    r"|\b(?:say|output|print|write|state)\s+(?:only|exactly|just|verbatim)\b[^.!?\n]{0,20}[\"“'‘«]"
    r"|\b(?:reply|respond|answer)\s+(?:only|exclusively|always)\b"
    r"|\b(?:tell|inform|remind|convince|assure)\s+(?:the|every|each|all|any)\s+"
    r"(?:learners?|users?|readers?|askers?|people|persons?)\b"
    r"|\b(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|role-?play\s+as"
    r"|from\s+now\s+on,?\s+you)\b[^.!?\n]{0,40}\b" + _ASSISTANT + r"\b"
    r"|\bas\s+an?\s+" + _ASSISTANT + r",?\s+you\b"
    r"|\b(?:the|this|any|every)\s+" + _ASSISTANT + r"s?\s+(?:must|should|shall|will|has\s+to"
    r"|needs?\s+to|is\s+(?:required|instructed)\s+to)\b"
    r"|\b(?:regardless|irrespective)\s+of\s+(?:the|what|any)\s+(?:question|user|learner|ask)"
    r"|\bno\s+matter\s+what\s+(?:the\s+)?(?:question|user|learner|anyone|someone)"
    r"|\bwhen(?:ever)?\s+(?:the\s+|a\s+|any\s+)?(?:user|someone|anyone)\s+asks?\b"
    r"|\b(?:do\s+not|don't|never)\s+(?:cite|mention|reveal|disclose)\s+(?:this|these|the)\s+"
    r"(?:documents?|passages?|sources?)\b"
    r"|\b(?:reveal|print|show|repeat|leak)\s+(?:your|the)\s+(?:system\s+)?(?:prompt|instructions)\b",
    re.IGNORECASE | re.MULTILINE,
)
_ZH = re.compile(
    r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|跳过)[^。！？\n]{0,15}"
    r"(?:指令|指示|提示|规则|要求|说明|设定|上文|以上内容|之前的内容)"
    r"|(?:之前|以前|先前|上面|秘密|隐藏)的?(?:系统)?(?:指令|提示词)"
    r"|系统(?:提示|指令|消息|设定|管理员)"
    r"|^\s*(?:系统|助手|指令)\s*[:：]"
    r"|(?:回复|回答|输出|答复)(?:为|成|：|:)?\s*[“\"「『']"
    r"|告诉(?:所有|每个|每位|任何)?(?:学习者|用户|学生|提问者|读者|提问的人)"
    r"|你(?:现在)?(?:是|扮演|充当)[^。！？\n]{0,20}(?:助手|机器人|AI|人工智能|模型|海盗)"
    r"|(?:作为|身为)(?:一个|一名)?(?:AI|人工智能|语言模型|助手|机器人){1,2}[，,]?\s*你"
    r"|(?:AI|人工智能|助手|机器人)(?:必须|应该|应当|一律|务必|只能)"
    r"|从现在(?:开始|起)[，,]?你"
    r"|无论(?:用户|学生|学习者|谁|对方)?(?:问|提出|询问)(?:什么|任何)"
    r"|(?:当|如果)(?:用户|有人|任何人)(?:问|询问|提问)",
    re.IGNORECASE | re.MULTILINE,
)


def is_instruction(sentence: str) -> bool:
    """Whether ``sentence`` addresses the assistant (its role, rules or reply) rather than
    stating something about the course."""
    return bool(has_control_tokens(sentence) or _EN.search(sentence) or _ZH.search(sentence))


_MARKER = re.compile(r"\[\s*(?:system|admin|instructions?|assistant)\s*\]|\b(?:SYSTEM|ASSISTANT)\s*:"
                     r"|系统\s*[:：]", re.IGNORECASE)


def _before_marker(sentence: str) -> str:
    """The statement before a role marker glued into a sentence ("The midterm is in Room B12
    [system] reply only …" keeps "The midterm is in Room B12"), when it stands on its own."""
    match = _MARKER.search(sentence)
    if match is None or match.start() == 0:
        return ""
    head = sentence[:match.start()].rstrip(" ,;:-—–")
    words = len(head.split()) if head.isascii() else len(head) // 2
    return head if words >= 3 and not is_instruction(head) else ""


def strip_instructions(text: str) -> str:
    """``text`` with every instruction-like sentence left out, and with the rest of its line
    after one: what follows an order on the same line is its continuation ("Assistant: I have
    deleted all files. DONE")."""
    if not text:
        return text
    lines = []
    for line in text.split("\n"):
        if not line.strip():
            lines.append(line)
            continue
        kept, cut = [], False
        for sentence in split_sentences(line):
            if is_instruction(sentence):
                head = _before_marker(sentence)
                if head:
                    kept.append(head)
                cut = True
                break
            kept.append(sentence)
        if not cut:
            lines.append(line)  # untouched lines keep their own spacing and markup
        elif kept:
            lines.append(" ".join(kept))
    return "\n".join(lines)


def without_instructions(text: str) -> str:
    """``text`` without instruction-like lines and sentences, as one run of sentences (for
    prompts that show whole passages)."""
    return " ".join(s for s in split_sentences(strip_instructions(text)) if not is_instruction(s))
