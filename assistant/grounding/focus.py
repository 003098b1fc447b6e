"""What a question asks for (its answer type) and whether a sentence holds that kind of thing
(a place, a time, an amount, a person, a week), in English and Chinese; and whether a question
is about the course or institution at all.

These are deliberately plain patterns: they decide whether evidence *can* answer a question
("where" needs a place in a sentence that also names the subject).
"""

from __future__ import annotations

import re
import unicodedata

from assistant.grounding.numbers import EN_NUMBERS

# -- answer types ---------------------------------------------------------------------------

_TYPE_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("money", re.compile(r"\bhow much\b(?!\s+(?:time|of|weight|percent|does\b.*\bcount|is\b.*"
                         r"\bworth))|\b(?:price|cost|costs|fee|fees|tuition|charge|charged|pay|"
                         r"refund)\b|多少钱|费用|学费|价格|价钱|收费|罚款|罚金|退款|"
                         r"多少元|几块钱|贵不贵", re.I)),
    ("week", re.compile(r"\b(?:which|what) week\b|\bin week\b|第几周|哪一?周|几周", re.I)),
    ("location", re.compile(r"\bwhere\b|\b(?:which|what) (?:room|building|hall|lab|place|"
                            r"classroom)\b|\bin which (?:room|building)\b|哪里|哪儿|在哪|哪个教室|"
                            r"哪间|哪栋|什么地方|地点|哪个房间|哪个楼|几号楼|哪个实验室", re.I)),
    ("person", re.compile(r"\bwho\b|\bwhose\b|\b(?:which|what) (?:lecturer|teacher|professor|"
                          r"instructor|ta|tutor)\b|\bname of the\b|\bcontact person\b|谁|哪位|"
                          r"是哪个老师|叫什么名字|联系人", re.I)),
    ("time", re.compile(r"\bwhen\b|\bwhat time\b|\bwhat date\b|\bwhich day\b|\bdeadline\b|"
                        r"\bdue\b|\bhow long\b|\bhow soon\b|\bhow often\b|什么时候|几点|何时|哪天|"
                        r"哪一天|几号|日期|截止|期限|多久|多长时间|多少天|时间是", re.I)),
    ("number", re.compile(r"\bhow many\b|\bhow much\b|\bwhat percent(?:age)?\b|\bhow large\b|"
                          r"\bmaximum\b|\bminimum\b|\bat most\b|\bat least\b|\bwhat score\b|"
                          r"\bwhat grade\b|\bweight\b|多少|几个|几次|几门|几本|占比|比例|百分之|"
                          r"最多|最少|至少|几分|多大", re.I)),
]
_CONTACT = re.compile(r"\be-?mail\b|\bphone\b|\bnumber to call\b|\bcontact details\b|邮箱|"
                      r"电话|手机号|联系方式", re.I)
_WH = re.compile(r"\b(?:what|which|where|when|who|whom|whose|how|why)\b|哪|多少|几|什么|怎么|怎样|"
                 r"如何|为什么|多久|谁", re.I)
_YESNO = re.compile(r"^\s*(?:so\s+|and\s+|but\s+|also\s+)?(?:can|may|must|is|are|am|do|does|did|"
                    r"should|will|could|would|shall|has|have|need|is it|are we|are there)\b|"
                    r"吗[？?]?\s*$|(?<![什怎为多])么[？?]?\s*$|可不可以|能不能|是不是|是否|有没有|要不要|允不允许|"
                    r"行不行|需不需要|必须.*吗", re.I)


def answer_type(question: str) -> str:
    """``contact`` | ``money`` | ``week`` | ``location`` | ``person`` | ``time`` | ``number`` |
    ``yesno`` |
    ``open`` (anything else: "what does week 2 cover?")."""
    q = unicodedata.normalize("NFKC", question)
    if _CONTACT.search(q):
        return "contact"
    if _YESNO.search(q) and not _WH.search(q):
        return "yesno"
    for name, pattern in _TYPE_RULES:
        if pattern.search(q):
            return name
    return "yesno" if _YESNO.search(q) else "open"

# -- what a sentence holds --------------------------------------------------------------------

_MONTHS = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_DAYS = r"mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun"
_ENTITY: dict[str, re.Pattern[str]] = {
    "money": re.compile(r"[$€£¥￥]\s?\d|\d[\d,.]*\s?(?:dollars?|usd|eur|euros?|gbp|pounds?|"
                        r"yuan|rmb|cny)\b|\d[\d,.]*\s?(?:元|块|美元|欧元)|[零一二两三四五六七八九十百千万]+"
                        r"(?:元|块)", re.I),
    "week": re.compile(r"\bweeks?\s+\d+|\bweek\s+(?:" + "|".join(EN_NUMBERS) + r")\b|"
                       r"第\s*[\d一二两三四五六七八九十]+\s*周", re.I),
    "location": re.compile(r"\b(?:room|rm\.?|hall|lab|laboratory|building|library|office|"
                           r"auditorium|theatre|theater|centre|center|online|zoom|desk|cabinet|"
                           r"station|corridor|door|exit|area|bench|shelf|counter|container|bin|box|cupboard|"
                           r"point|lawn|car park|entrance|floor|hood|sink|field|gate|platform|"
                           r"portal|page|website|email)\b|"
                           r"\b[A-Z]{1,3}-?\d{2,4}[A-Z]?\b|[楼馆厅室房]|机房|教室|实验室|图书馆|"
                           r"办公室|线上|网上|门口|走廊|柜|台", re.I),
    "person": re.compile(r"\b(?:dr|prof|professor|mr|mrs|ms|lecturer|instructor|teacher|tutor|"
                         r"ta|tas|assistant|coordinator|officer|head|director|manager|"
                         r"demonstrator|technician|dean|chair)\b\.?|@|老师|教授|博士|助教|负责人|"
                         r"联系人|主任|讲师|管理员|院长",
                         re.I),
    "time": re.compile(r"\d{1,2}[:：.]\d{2}|\b\d{1,2}\s?(?:am|pm)\b|\b(?:" + _DAYS + r")(?:day)?s?"
                       r"\b|\b(?:" + _MONTHS + r")\b\.?\s*\d|\d{1,2}\s+(?:" + _MONTHS + r")\b|"
                       r"\b\d{4}-\d{2}-\d{2}\b|\b(?:\d+|" + "|".join(EN_NUMBERS) + r"|a|an|one)"
                       r"\s+(?:working\s+|calendar\s+|school\s+)?(?:weeks?|days?|hours?|minutes?|"
                       r"months?|years?)\b|\bweek\s+\d+|\b(?:today|tomorrow|tonight|midnight|noon)\b|"
                       r"\d+\s*月\s*\d+\s*日|周[一二三四五六日天]|星期|[上下]午|晚上|早上|第.{1,3}周|"
                       r"\d+\s*(?:个)?(?:工作日|天|周|月|年|小时|分钟)|"
                       r"[一二两三四五六七八九十半]+\s*(?:个)?(?:工作日|天|周|月|小时|分钟)", re.I),
    "contact": re.compile(r"@|\+?\d[\d\s-]{6,}\d"),
    "number": re.compile(r"\d|\b(?:" + "|".join(EN_NUMBERS) + r"|half|twice|once|double)\b|"
                         r"[一二两三四五六七八九十百半]", re.I),
}


def holds(sentence: str, kind: str) -> bool:
    """Whether ``sentence`` contains an entity that could answer a question of type ``kind``."""
    pattern = _ENTITY.get(kind)
    return True if pattern is None else bool(pattern.search(unicodedata.normalize("NFKC", sentence)))

# -- institution questions ------------------------------------------------------------------

_INSTITUTION = re.compile(
    r"\b(?:course|class|module|syllabus|handbook|exam|exams|midterm|final|quiz|lecture|lectures|"
    r"lab|labs|assignment|assignments|homework|project|deadline|due|grade|grades|grading|credit|"
    r"credits|fee|fees|tuition|price|cost|refund|fine|textbook|book|library|room|office hours?|"
    r"ta|tas|teaching assistant|lecturer|professor|instructor|teacher|tutor|semester|term|"
    r"enrol|enroll|register|registration|campus|school|college|university|department|policy|"
    r"rule|rules|attendance|absence|late|extension|grace|plagiarism|safety|parking|canteen|"
    r"dorm|scholarship|[A-Z]{2,4}[\s-]?\d{3})\b|课程|这门课|考试|期中|期末|测验|讲课|上课|实验|作业|"
    r"项目|截止|成绩|学分|学费|费用|退费|退款|罚款|教材|课本|图书馆|教室|答疑|助教|老师|教授|讲师|"
    r"学期|报名|注册|校园|学校|学院|大学|规定|政策|考勤|缺勤|迟交|延期|抄袭|安全|停车|食堂|宿舍|"
    r"奖学金", re.I)


def asks_institution(question: str) -> bool:
    """A question about the course or institution (a fact only its documents can hold):
    a specific answer type (when, where, who, how much …) plus a course/institution word."""
    q = unicodedata.normalize("NFKC", question)
    kind = answer_type(q)
    return kind in {"contact", "money", "week", "location", "person", "time", "number",
                    "yesno"} and bool(
        _INSTITUTION.search(q))
