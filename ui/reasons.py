"""The router's reasons (``RouteDecision.reason``, the agent's route notes) in the page's language.

The API keeps the reasons as the router writes them (English, stable for logs and clients);
the chat page shows each ``; ``-separated part through the patterns below. A part no pattern
knows is shown as written, so a plugin's own wording is never lost.
"""

from __future__ import annotations

import re

# (pattern over one English part, its Chinese form with the same named groups)
_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text) for pattern, text in (
        (r"image attached", "附有图片"),
        (r"no image attached", "没有附图"),
        (r"empty message", "消息为空"),
        (r"classifier: no tool", "意图分类：不需要工具"),
        (r"classifier", "意图分类器选中"),
        (r"no tools registered", "没有可用的工具"),
        (r"nothing relevant", "没有找到相关内容"),
        (r"fallback: (?P<tool>\S+)", "改用 {tool} 查找"),
        (r"(?P<tool>\S+) needs an image; none attached", "{tool} 需要图片，但没有附图"),
        (r"below threshold (?P<threshold>[\d.]+) \((?P<tool>\S+) (?P<p>[\d.]+)\)",
         "置信度低于阈值 {threshold}（{tool} {p}）"),
        (r"router (?P<p>[\d.]+)", "路由置信度 {p}"),
        (r"native: (?P<why>.+)", "模型调用工具：{why}"),
    )
)


_PARTS = re.compile(r";(?!\s*none attached)\s*")  # "X needs an image; none attached" is one part


def _part_zh(part: str) -> str:
    for pattern, text in _ZH:
        match = pattern.fullmatch(part)
        if match:
            groups = {k: _part_zh(v) if k == "why" else v for k, v in match.groupdict().items()}
            return text.format(**groups)
    return part


def localize_reason(reason: str, lang: str) -> str:
    """``reason`` as the chat page shows it in ``lang`` ('en' leaves it unchanged)."""
    if lang != "zh" or not reason:
        return reason
    return "；".join(_part_zh(part.strip()) for part in _PARTS.split(reason))
