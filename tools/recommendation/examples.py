"""Utterances that should route to ``recommend_resources`` (the router trains on them):
a learner asking what to study next (courses, lessons, resources, by subject or level), in
English and Chinese."""

from __future__ import annotations

EXAMPLES_EN: list[str] = [
    "What should I study next?",
    "Recommend a course for me",
    "Can you suggest what to learn after this?",
    "Give me 3 courses I should take next",
    "Which lesson should I do now?",
    "I finished algebra, what comes next?",
    "Any recommendations for my next module?",
    "Suggest some beginner physics resources",
    "What's a good next step in my learning path?",
    "Recommend something about machine learning",
    "I want to improve my English, what course should I take?",
    "Show me advanced math courses I'm ready for",
    "What else would you recommend for me to learn?",
    "Pick five resources for me to study this week",
    "Which chemistry lessons fit my level?",
    "Plan my next study session, what should I work on?",
    "I'm new here, where should I start learning?",
    "Suggest a course based on what I've completed",
    "Recommend two history courses",
    "What do learners like me usually study next?",
    "Help me choose my next programming class",
    "Is there an intermediate data science course you'd suggest for me?",
    "I have an hour free, what should I learn?",
    "Give me personalised course recommendations",
    "What topics should I study to prepare for calculus?",
    "Recommend me some economics materials",
    "Find me the next course on my learning path",
]

EXAMPLES_ZH: list[str] = [
    "我接下来学什么？",
    "推荐一门课给我",
    "给我推荐三门课",
    "下一步我应该学习哪门课程？",
    "学完代数以后该学什么？",
    "有什么适合我的学习资源推荐吗？",
    "帮我推荐几个入门的物理课程",
    "我想学机器学习，推荐点课程",
    "接下来我该学哪些内容？",
    "推荐一些高级数学课程",
    "我刚来，应该从哪里开始学？",
    "根据我学过的内容推荐下一门课",
    "有没有适合我水平的化学课？",
    "给我推荐5个学习资源",
    "我想提高英语，选什么课好？",
    "和我差不多的同学都在学什么？",
    "帮我选一门编程课",
    "最近学点什么好？推荐一下",
    "推荐两门历史课",
    "我已经完成了Python入门，下一门学什么？",
    "有中级的数据科学课程推荐吗？",
    "还有什么课程值得我学？",
    "请给我一些个性化的课程推荐",
    "我有一个小时空闲，学点什么好？",
    "推荐几门经济学的课",
    "适合初学者的语文课有哪些？",
    "为我挑选下一步要学的内容",
]

EXAMPLES: list[str] = EXAMPLES_EN + EXAMPLES_ZH
