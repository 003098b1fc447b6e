"""One-line explanations and labels in the learner's language (English or Chinese)."""

from __future__ import annotations

from typing import Any

SUBJECT_NAMES_ZH = {
    "mathematics": "数学", "physics": "物理", "chemistry": "化学", "biology": "生物",
    "computer science": "计算机科学", "data science": "数据科学", "english": "英语",
    "chinese": "语文", "history": "历史", "economics": "经济学",
}
LEVEL_NAMES = {"beginner": {"en": "beginner", "zh": "入门"},
               "intermediate": {"en": "intermediate", "zh": "中级"},
               "advanced": {"en": "advanced", "zh": "高级"}}
VERBS = {"complete": {"en": "completed", "zh": "完成了"}, "like": {"en": "liked", "zh": "喜欢"},
         "rating": {"en": "rated", "zh": "评价过"}, "quiz": {"en": "took the quiz on", "zh": "做过测验："},
         "view": {"en": "looked at", "zh": "看过"}}
TEMPLATES = {
    "because": {"en": "Because you {verb} “{title}”", "zh": "因为你{verb}《{title}》"},
    "similar_learners": {"en": "Popular with learners like you", "zh": "和你相似的学习者也在学"},
    "interest": {"en": "Matches your interest in {topic}", "zh": "符合你对{topic}的兴趣"},
    "popular": {"en": "Popular with learners", "zh": "很受学习者欢迎"},
    "next_step": {"en": "The next step after “{title}”, which you completed",
                  "zh": "你已完成《{title}》，这是接下来的一步"},
    "unlocks": {"en": "Needed before “{title}”", "zh": "学习《{title}》之前需要先学它"},
    "header": {"en": "Recommended for you:", "zh": "为你推荐："},
    "header_cold": {"en": "You have no learning activity yet, so here are popular starting points:",
                    "zh": "你还没有学习记录，先推荐一些受欢迎的入门内容："},
    "none": {"en": "No resources match these filters (already completed, level, subject, "
                   "prerequisites).",
             "zh": "没有符合条件的学习资源（已完成、级别、学科或先修要求）。"},
    "relaxed": {"en": "(Some items are in another language: too few in yours matched.)",
                "zh": "（符合条件的中文资源不足，部分为其他语言。）"},
    "minutes": {"en": "{n} min", "zh": "{n} 分钟"},
}


def lang_of(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def say(key: str, language: str, **values: Any) -> str:
    return TEMPLATES[key][lang_of(language)].format(**values)


def subject_name(subject: str, language: str) -> str:
    return SUBJECT_NAMES_ZH.get(subject, subject) if lang_of(language) == "zh" else subject


def level_name(level: str, language: str) -> str:
    return LEVEL_NAMES.get(level, {}).get(lang_of(language), level)


def verb(kind: str, language: str) -> str:
    return VERBS.get(kind, VERBS["view"])[lang_of(language)]
