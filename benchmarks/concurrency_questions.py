"""What the simulated learners of ``benchmarks/concurrency.py`` ask: four kinds of turns, each
an (English, Chinese) pair, many distinct ones so that levels of the benchmark do not replay
each other's prompts (llama.cpp would answer a replayed prompt from its prompt cache).

Knowledge questions are about the demo CS101 handbook (``tools/knowledge_search/demo``);
recommendations about the demo catalog's subjects; classification is sentiment or labels; chat is
a general request the assistant answers without a tool. A shared module, not a benchmark.
"""

from __future__ import annotations

import re

Pair = tuple[str, str]

KNOWLEDGE: list[Pair] = [
    ("What is the attendance policy for the labs?", "实验课的考勤制度是什么？"),
    ("When is the midterm exam and in which room?", "期中考试是什么时候？在哪个教室？"),
    ("Can I use a calculator in the final exam?", "期末考试可以用计算器吗？"),
    ("What is the penalty for submitting an assignment late?", "迟交作业怎么扣分？"),
    ("How do I submit my assignments?", "作业应该怎么提交？"),
    ("Which textbook is required for CS101?", "CS101 的指定教材是什么？"),
    ("What score do I need in the final exam to pass the course?", "期末考试至少要多少分才能通过？"),
    ("How many labs can I miss without a reason?", "无故缺勤的实验课最多可以几次？"),
    ("How is the final grade made up?", "总评成绩是怎么构成的？"),
    ("When is the make-up exam?", "补考是什么时候？"),
    ("What happens if I arrive more than 20 minutes late to a lab?", "实验课迟到超过 20 分钟会怎样？"),
    ("What is the policy on plagiarism?", "抄袭会受到什么处理？"),
    ("When are the office hours?", "答疑时间是什么时候？"),
    ("How do I request a regrade of my exam in CS101?", "怎样申请成绩复核？"),
    ("Who are the teaching assistants?", "这门课的助教是谁？"),
    ("When is the final exam and where is it held?", "期末考试在什么时间、什么地点？"),
    ("Are lectures recorded?", "讲课有录像吗？"),
    ("What should the assignment zip file be named?", "作业压缩包应该怎么命名？"),
    ("What does the midterm exam cover?", "期中考试考哪些内容？"),
    ("Can I bring notes to the midterm exam?", "期中考试可以带笔记吗？"),
    ("When is assignment 2 due?", "作业 2 什么时候截止？"),
    ("How many credits is CS101 worth?", "CS101 有多少学分？"),
    ("What should I do if I am ill and miss a CS101 lab?", "如果实验课那天生病了怎么办？"),
    ("Is a grade of 89.5 rounded up?", "总分 89.5 分会向上取整吗？"),
]

_TEXTS: list[Pair] = [
    ("The lectures were clear and the labs helped me a lot.", "讲课很清楚，实验课对我帮助很大。"),
    ("Too fast, I got lost after week two.", "老师讲课太快了，我第二周就跟不上了。"),
    ("The exam was unfair and badly organised.", "这次考试不公平，组织得也很差。"),
    ("The teaching assistants were patient and kind.", "助教非常耐心，也很友善。"),
    ("Far too much homework for the time we have.", "作业太多了，时间根本不够。"),
    ("I finally understand recursion, thank you!", "我终于弄懂递归了，谢谢！"),
    ("The projector never worked and nobody fixed it.", "投影仪一直坏着，也没人修。"),
    ("Interesting exercises, I learned a lot.", "练习很有意思，我学到了很多。"),
    ("The feedback on my assignment came very late.", "作业的反馈来得太晚了。"),
    ("Best course I have taken this year.", "这是我今年上过最好的课。"),
    ("The slides are confusing and full of mistakes.", "课件很混乱，错误也很多。"),
    ("The online quizzes are a great way to revise.", "在线小测验是很好的复习方式。"),
    ("Labs start late every single week.", "实验课每周都推迟开始。"),
    ("The lecturer answers every question with care.", "老师认真回答每一个问题。"),
    ("I feel lost and nobody explains anything.", "我很迷茫，没有人解释任何东西。"),
    ("Group work was fun and well organised.", "小组作业很有趣，组织得也很好。"),
]
_CLASSIFY_TEMPLATES: list[Pair] = [
    ("What is the sentiment of: '{}'", "这条评论是正面还是负面的？“{}”"),
    ("Is this review positive or negative: '{}'", "判断这条评论的情感：“{}”"),
]

_SUBJECTS: list[Pair] = [
    ("data science", "数据科学"), ("machine learning", "机器学习"), ("Python programming", "Python 编程"),
    ("statistics", "统计学"), ("algebra", "代数"), ("geometry", "几何"), ("physics", "物理"),
    ("chemistry", "化学"), ("biology", "生物"), ("world history", "世界历史"),
    ("Chinese history", "中国历史"), ("economics", "经济学"), ("English writing", "英语写作"),
    ("Chinese reading", "中文阅读"), ("calculus", "微积分"), ("algorithms", "算法"),
]
_RECOMMEND_TEMPLATES: list[Pair] = [
    ("Recommend me a course on {}.", "推荐一门关于{}的课程。"),
    ("Recommend a resource for a beginner in {}.", "给初学者推荐一个{}的学习资源。"),
]

_CONCEPTS: list[Pair] = [
    ("recursion", "递归"), ("a hash table", "哈希表"), ("a variable", "变量"), ("a loop", "循环"),
    ("a function", "函数"), ("a compiler", "编译器"), ("an algorithm", "算法"), ("a linked list", "链表"),
    ("binary search", "二分查找"), ("photosynthesis", "光合作用"), ("inflation", "通货膨胀"),
    ("gravity", "万有引力"), ("a prime number", "质数"), ("an API", "应用程序接口"),
    ("version control", "版本控制"), ("a database index", "数据库索引"),
]
_CHAT_TEMPLATES: list[Pair] = [
    ("Explain {} in two sentences.", "用两句话解释什么是{}。"),
    ("Explain {} to a beginner in one sentence.", "用一句话向初学者解释{}。"),
]


def _fill(templates: list[Pair], values: list[Pair]) -> list[Pair]:
    return [(en.format(v_en), zh.format(v_zh)) for v_en, v_zh in values for en, zh in templates]


POOLS: dict[str, list[Pair]] = {
    "knowledge": KNOWLEDGE,
    "classify": _fill(_CLASSIFY_TEMPLATES, _TEXTS)
    + [("Classify 'Mitochondria make energy for the cell' into biology, history or music",
        "把“线粒体为细胞提供能量”分类为生物、历史或音乐")],
    "recommend": _fill(_RECOMMEND_TEMPLATES, _SUBJECTS),
    "chat": _fill(_CHAT_TEMPLATES, _CONCEPTS),
}
KINDS: tuple[str, ...] = ("knowledge", "classify", "recommend", "chat")
# Asked before measuring, one of each kind and a Chinese knowledge question; not in the pools.
WARM_UP: list[tuple[str, str]] = [
    ("knowledge", "Who is the lecturer of CS101?"),
    ("knowledge", "这门课的任课老师是谁？"),
    ("classify", "What is the sentiment of: 'A pleasant and useful first lab.'"),
    ("recommend", "Recommend me a course on mechanics."),
    ("chat", "Explain what a byte is in one sentence."),
]


def question(g: int, kinds: tuple[str, ...] = KINDS) -> tuple[str, str, str]:
    """Turn number ``g``: (kind, language, text). Kinds take turns; each kind walks its pool,
    and the language alternates so that any four consecutive turns hold both languages."""
    kind = kinds[g % len(kinds)]
    pool = POOLS[kind]
    step = g // len(kinds)
    en, zh = pool[step % len(pool)]
    text = zh if (step + g % len(kinds)) % 2 else en
    return kind, language_of(text), text


def language_of(text: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"
