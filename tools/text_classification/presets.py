"""Education presets (feedback type, subject) and the label vocabulary the zero-shot
classifier knows: canonical names, English/Chinese names, aliases and descriptions.

A user-supplied label that matches a known alias ("math", "数学", "投诉") is embedded with
the richer description; any other label is embedded as written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal

Language = Literal["en", "zh"]


@dataclass(frozen=True)
class LabelInfo:
    key: str
    en: str
    zh: str
    desc_en: str
    desc_zh: str
    aliases: tuple[str, ...] = ()

    def name(self, lang: Language) -> str:
        return self.zh if lang == "zh" else self.en

    def description(self, lang: Language) -> str:
        return self.desc_zh if lang == "zh" else self.desc_en


@dataclass(frozen=True)
class Preset:
    name: str
    labels: tuple[LabelInfo, ...]
    cues: tuple[str, ...] = field(default=())  # words in a request that ask for this preset

    def label_names(self, lang: Language) -> list[str]:
        return [label.name(lang) for label in self.labels]


FEEDBACK = Preset(
    name="feedback",
    labels=(
        LabelInfo("praise", "praise", "表扬",
                  "praise: the writer thanks or compliments the teacher, the class or the course",
                  "表扬：称赞、感谢老师、课程或服务，表示满意",
                  ("compliment", "positive feedback", "称赞", "赞扬", "夸奖")),
        LabelInfo("complaint", "complaint", "投诉",
                  "complaint: the writer is unhappy and reports a problem, a fault or unfair treatment",
                  "投诉：不满意，抱怨出现的问题、错误或不合理的情况",
                  ("problem report", "抱怨", "不满")),
        LabelInfo("suggestion", "suggestion", "建议",
                  "suggestion: the writer proposes an improvement, something to add or change",
                  "建议：提出改进意见，希望增加或改变某些做法",
                  ("idea", "improvement", "feature request", "意见", "提议")),
        LabelInfo("question", "question", "提问",
                  "question: the writer asks for information, such as a date, a rule or how to do something",
                  "提问：询问信息，比如时间、规定或者怎么做某件事",
                  ("inquiry", "enquiry", "问题", "疑问", "咨询")),
    ),
    cues=("feedback type", "type of feedback", "kind of feedback", "feedback category",
          "category of feedback", "feedback", "反馈类型", "反馈的类型", "反馈类别", "反馈", "留言类型"),
)

SUBJECT = Preset(
    name="subject",
    labels=(
        LabelInfo("mathematics", "mathematics", "数学",
                  "mathematics: numbers, algebra, equations, geometry, functions, probability and calculus",
                  "数学：数字、代数、方程、几何、函数、数列、概率和微积分",
                  ("math", "maths", "algebra", "geometry", "calculus")),
        LabelInfo("physics", "physics", "物理",
                  "physics: force, motion, energy, electricity, light, waves and gravity",
                  "物理：力、运动、能量、电路、光、波和重力",
                  ("物理学",)),
        LabelInfo("chemistry", "chemistry", "化学",
                  "chemistry: elements, atoms, molecules, chemical reactions, acids and bases",
                  "化学：元素、原子、分子、化学反应、酸和碱",
                  ("化学课",)),
        LabelInfo("biology", "biology", "生物",
                  "biology: cells, genes, plants, animals, the human body and evolution",
                  "生物：细胞、基因、植物、动物、人体和进化",
                  ("生物学", "life science")),
        LabelInfo("history", "history", "历史",
                  "history: past events, wars, revolutions, dynasties, empires and historical figures",
                  "历史：过去的事件、战争、革命、朝代、帝国和历史人物",
                  ("历史学",)),
        LabelInfo("geography", "geography", "地理",
                  "geography: countries, rivers, mountains, climate, maps and the Earth's surface",
                  "地理：国家、河流、山脉、气候、地图和地球表面",
                  ("地理学",)),
        LabelInfo("literature", "literature", "文学",
                  "literature: novels, poems, authors, writing style and the analysis of stories",
                  "文学：小说、诗歌、作家、写作手法和作品分析",
                  ("language arts", "English literature", "语文", "文学课")),
        LabelInfo("programming", "programming", "编程",
                  "programming: writing computer code, software, algorithms and fixing bugs",
                  "编程：写计算机代码、软件、算法和调试程序错误",
                  ("coding", "computer science", "computing", "程序设计", "计算机", "计算机科学")),
        LabelInfo("music", "music", "音乐",
                  "music: songs, instruments, melody, rhythm, scales and composers",
                  "音乐：歌曲、乐器、旋律、节奏、音阶和作曲家",
                  ("音乐课",)),
        LabelInfo("art", "art", "美术",
                  "art: painting, drawing, colour, sculpture and artists",
                  "美术：绘画、素描、色彩、雕塑和艺术家",
                  ("fine art", "visual art", "painting", "艺术", "绘画")),
    ),
    cues=("subject", "school subject", "discipline", "topic", "学科", "科目", "主题", "哪一科",
          "哪门课", "话题"),
)

SENTIMENT = Preset(
    name="sentiment",
    labels=(
        LabelInfo("positive", "positive", "正面",
                  "positive: the writer is pleased, satisfied or happy",
                  "正面：满意、高兴、称赞",
                  ("good", "happy", "pleased", "积极", "好评", "正向", "开心")),
        LabelInfo("negative", "negative", "负面",
                  "negative: the writer is displeased, disappointed or unhappy",
                  "负面：不满意、失望、抱怨",
                  ("bad", "unhappy", "sad", "消极", "差评", "负向", "难过")),
    ),
    cues=("sentiment", "positive or negative", "negative or positive", "情感", "情绪", "正面还是负面",
          "好评还是差评", "积极还是消极"),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (FEEDBACK, SUBJECT, SENTIMENT)}


@lru_cache(maxsize=1)
def _alias_index() -> dict[str, LabelInfo]:
    index: dict[str, LabelInfo] = {}
    for preset in PRESETS.values():
        for label in preset.labels:
            for alias in (label.key, label.en, label.zh, *label.aliases):
                index.setdefault(normalise_label(alias), label)
    return index


def normalise_label(label: str) -> str:
    return " ".join(label.strip().lower().split())


def known_label(label: str) -> LabelInfo | None:
    """The preset entry a user label names (``"Maths"``, ``"数学"``), if any."""
    return _alias_index().get(normalise_label(label))


def load_eval_set(preset: str, lang: Language) -> list[dict[str, str]]:
    """The labelled evaluation items shipped with a preset: ``{"text", "label", "lang"}``."""
    if preset not in ("feedback", "subject"):
        raise ValueError(f"no evaluation set for preset {preset!r}")
    path = resources.files("tools.text_classification") / "data" / f"{preset}_{lang}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
