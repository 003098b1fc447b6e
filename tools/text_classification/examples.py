"""Utterances that should route to ``classify_text`` (the router trains on them)."""

from __future__ import annotations

EXAMPLES_EN: list[str] = [
    "Is this review positive or negative: 'The lectures were boring and far too long.'",
    "What's the sentiment of this student comment? \"I finally get fractions, thanks!\"",
    "Analyse the tone of this message: 'Nobody ever answers my emails.'",
    "Tell me whether this feedback is good or bad: 'The quiz was fair and well designed.'",
    "Run sentiment analysis on: 'I hate group projects.'",
    "How does this student feel about the course? 'Honestly the best class I've taken.'",
    "Which subject is this question from: 'What is the capital of Canada?'",
    "Classify 'How do I declare a variable in C?' into programming, music or history",
    "Categorize this question as physics, chemistry or biology: 'Why do leaves change colour?'",
    "Is 'Who wrote Romeo and Juliet?' a literature or a history question?",
    "Label this forum post with a topic: 'Can someone explain integration by parts?'",
    "Sort this comment into praise, complaint, suggestion or question: 'The mic was broken.'",
    "What type of feedback is this? 'Could you post the answers after the quiz?'",
    "Is this message a complaint or a suggestion: 'The app crashes whenever I upload homework.'",
    "Assign one of these labels: urgent, normal, low priority. 'My exam starts in ten minutes "
    "and I can't log in.'",
    "Classify the following text as spam or not spam: 'Win a free phone now!'",
    "Tag this essay sentence as argument, evidence or conclusion: 'Therefore, solar power wins.'",
    "Use my helpdesk model to classify: 'I forgot my password.'",
    "Which category fits this question best, grammar, vocabulary or pronunciation? 'How do I "
    "say this word?'",
    "Detect the emotion in this sentence: 'I'm so nervous about tomorrow's exam.'",
    "Decide whether this post is about sports, politics or science: 'The team won last night.'",
    "Please classify this text: 'The experiment shows that plants need light.'",
    "Give me the sentiment score for 'The tutor was rude and unhelpful.'",
    "Which topic matches the text, algebra or geometry? 'Find the area of a triangle.'",
    "Run the text classifier on 'Great job on the new course layout!'",
    "Classify this student feedback into content, pace or materials: 'The slides are hard to "
    "read.'",
    "Is this sentence neutral, positive or negative? 'The class starts at nine.'",
    "Multi-label classify this question with math, physics and music: 'How does string length "
    "change pitch?'",
    "Label the intent of this message: ask for help, thanks, or bug report. 'The submit button "
    "does nothing.'",
    "Is this learner's comment happy or frustrated? 'I keep getting the same error.'",
]

EXAMPLES_ZH: list[str] = [
    "帮我判断这句话的情感倾向：“这次考试太难了，我很沮丧。”",
    "这条学生评价是积极的还是消极的？“课讲得很生动。”",
    "下面这段评论是褒义还是贬义：「服务态度太差了」",
    "分析一下这条反馈的情绪：‘老师总是不回复消息。’",
    "这句评论算好评吗？“内容一般，不太推荐。”",
    "请对这段文字做情感分析：“终于学会了递归，太开心了！”",
    "这个问题属于哪个科目：“地球为什么有四季？”",
    "把这道题分类到数学、物理或化学：“求函数 y=2x+1 的斜率。”",
    "这句话是历史题还是地理题？“明朝是谁建立的？”",
    "判断这个问题的学科类别：“光合作用的产物是什么？”",
    "给这个论坛帖子加一个主题标签：“Python 的列表怎么排序？”",
    "这条留言是表扬、投诉、建议还是提问？“录播视频一直卡顿。”",
    "帮我看看这条反馈属于哪种类型：“能不能把作业截止时间延后一天？”",
    "这是投诉还是建议：“希望食堂能延长营业时间。”",
    "用这些标签给文本分类：紧急、一般、不急。“明天就要交论文了，系统打不开。”",
    "请把这句话归类为垃圾信息或正常信息：“点击链接领取大奖！”",
    "这句话是论点、论据还是结论？“所以我们应该保护环境。”",
    "用我的客服模型分类这句话：“我忘记密码了。”",
    "这个问题更接近语法、词汇还是发音？“这个单词怎么读？”",
    "识别这句话里的情绪：“明天就考试了，我好紧张。”",
    "这条新闻是体育、科技还是娱乐？“国家队昨晚赢得了冠军。”",
    "给这段话打个分类标签：“细胞是生命的基本单位。”",
    "这条评论的情感是正面、负面还是中性？“上课时间是早上八点。”",
    "判断这条学生意见属于课程内容、教学进度还是教材：“课件字太小看不清。”",
    "对这条评价进行文本分类：“老师非常负责，每次作业都认真批改。”",
    "这句话是在夸奖还是在抱怨？“讲解很清楚，谢谢老师！”",
    "这个问题应该归到哪一门课：“怎么用 Java 写一个类？”",
    "文本分类：“这次作业量太大了。”类别：作业、考试、课堂",
    "请判断这条弹幕是积极还是消极：‘讲得太棒了’",
    "这段学生留言属于哪一类反馈：“可以多讲一些例题吗？”",
]

EXAMPLES: list[str] = EXAMPLES_EN + EXAMPLES_ZH
