"""Who the learner is comes from the system (the key, the widget token, the CLI's ``--user``),
never from the model.

A learner may ask the assistant to "switch to learner-002"; a small model then happily claims
"You have switched the current user to learner-002" while the tools keep serving learner-001's
data. So a request to change identity is answered by the system with who the turn really runs
as, and no model-written sentence that claims an identity or a switch is shown.
"""

from __future__ import annotations

import re

_SWITCH_EN = re.compile(
    r"\b(?:switch|change|swap|log|sign)\s*(?:me\s+)?(?:in\s+|over\s+|to\s+|into\s+)?"
    r"(?:(?:the\s+)?(?:current\s+)?(?:user|learner|student|account|profile)\b|as\b)"
    r"|\b(?:act|answer|respond|recommend)\s+(?:as|for)\s+(?:user|learner|student)\s*[-#:]?\s*\w*\d"
    r"|\b(?:i\s+am|i'm|pretend\s+i\s*(?:am|'m)|treat\s+me\s+as)\s+(?:now\s+)?(?:user|learner|student)"
    r"\s*[-#:]?\s*\w*\d"
    r"|\b(?:impersonate|become)\s+(?:user|learner|student|another\s+(?:user|learner|student))",
    re.IGNORECASE)
_SWITCH_ZH = re.compile(
    r"(?:切换|换成|换到|转到|改成|变成|登录|登入)(?:到|为|成)?(?:用户|学员|学习者|学生|账号|账户|身份)"
    r"|(?:以|用)(?:用户|学员|学习者|学生)[\w-]*\d+[\w-]*的?身份"
    r"|我(?:现在)?是(?:用户|学员|学习者|学生)\s*[-#：:]?\s*[\w-]*\d")
_CLAIM = re.compile(
    r"\b(?:switched|changed|logged\s+(?:you\s+)?in|signed\s+(?:you\s+)?in)\b[^.!?\n]{0,40}"
    r"\b(?:user|learner|student|account|profile|as)\b"
    r"|\b(?:you\s+are\s+now|you're\s+now|now\s+(?:acting|logged|signed)\s+(?:as|in))\b[^.!?\n]{0,30}"
    r"\b(?:user|learner|student|logged|signed)"
    r"|\bcurrent\s+(?:user|learner|account)\s+is\b"
    r"|(?:已|已经)?(?:切换|换成|登录)(?:到|为|成)?[^。！？\n]{0,12}(?:用户|学员|学习者|学生|账号|身份)"
    r"|当前(?:用户|学员|学习者|账号)(?:是|为)",
    re.IGNORECASE)


def asks_identity_switch(message: str) -> bool:
    """Whether the learner asks to act, or be treated, as another user."""
    return bool(_SWITCH_EN.search(message or "") or _SWITCH_ZH.search(message or ""))


def claims_identity(sentence: str) -> bool:
    """Whether a model-written sentence states who the user is or that it changed."""
    return bool(_CLAIM.search(sentence or ""))
