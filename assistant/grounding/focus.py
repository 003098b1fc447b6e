"""What a question asks for (its answer type and subject terms) and what a sentence holds
(numbers, times, places, people, money, negations), in English and Chinese.

These are deliberately plain patterns: they decide whether evidence *can* answer a question
("where" needs a place in a sentence that also names the subject) and whether a generated
answer says anything the evidence does not (a number, a room, a flipped "cannot").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from knowledge.lexical import tokenize

ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
             "七": 7, "八": 8, "九": 9}
EN_NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
              "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
              "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
              "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
              "fifty": 50, "sixty": 60, "hundred": 100}

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


# -- subject terms ----------------------------------------------------------------------------

_QUESTION_WORDS = frozenset("""
what which who whom whose when where why how much many long often soon does do did is are can
could may might must should would will shall held take place located cost costs price fee fees
time date day room get need allowed allow okay ok know find say says said tell explain
course class handbook documents document policy rule rules anything something please thanks
i me my we our you your held happen happens start starts exactly kind sort any there use
using bring allowed permitted permit go have able supposed while off just fine still
even really actually want wants like get got okay also else ever way need needs within
""".split())
_ZH_FILLER = re.compile(r"请问|请|一下|我们|我|你|吗|呢|吧|啊|呀|的|了|是|在|有|什么|哪里|哪儿|哪个|"
                        r"哪些|哪位|哪一|多少|几|怎么|如何|为什么|能不能|可不可以|可以|能|会|要|"
                        r"需要|应该|是否|是不是|有没有|课程|这门课|手册|文档|资料|规定|说|告诉|"
                        r"如果|但是|因为|所以|已经|时候|同时|一起|比较|非常|一个|这个|那个|"
                        r"教室|地点|时间|时候|邮箱|电话|费用|价格|多久|几点|哪天|日期|考场|房间|以后|以前|之后|之前|"
                        r"下来|起来|出来|能够|可能|怎样|会|"
                        r"[把被里个才还就都也又和跟与或让给对从到用过着得地么啊哦嘛啦呀很太最更该呢]")


_SLOT_UNITS = {"week": "周", "chapter": "章", "lecture": "讲", "lab": "实验", "assignment": "作业",
               "unit": "单元", "session": "次", "day": "天"}
_EN_SLOT = re.compile(r"\b(week|chapter|ch\.?|lecture|lab|assignment|unit)\s*(\d+|"
                      + "|".join(EN_NUMBERS) + r")\b", re.I)
_ZH_SLOT = re.compile(r"第\s*([\d一二两三四五六七八九十]+)\s*(周|章|讲|次实验|个作业|单元)")


def slots(text: str) -> set[tuple[str, int]]:
    """Numbered things a question or sentence names: ("week", 5) from "week 5" or "第五周"."""
    t = unicodedata.normalize("NFKC", text)
    out: set[tuple[str, int]] = set()
    for unit, num in _EN_SLOT.findall(t):
        value = int(num) if num.isdigit() else EN_NUMBERS.get(num.lower())
        unit = "chapter" if unit.lower().startswith("ch") else unit.lower()
        if value is not None:
            out.add((unit, value))
    zh_units = {v: k for k, v in _SLOT_UNITS.items()} | {"次实验": "lab", "个作业": "assignment"}
    for num, unit in _ZH_SLOT.findall(t):
        value = int(num) if num.isdigit() else _zh_number(num)
        if value is not None and unit in zh_units:
            out.add((zh_units[unit], value))
    for a, b in re.findall(r"\bweeks?\s+(\d+)\s*[–-]\s*(\d+)", t, re.I):  # "weeks 1–7"
        out.update(("week", v) for v in range(int(a), int(b) + 1) if int(b) - int(a) < 30)
    return out


def subject_terms(question: str) -> list[str]:
    """Content terms of a question: Latin words (minus question words) and Chinese bigrams
    (with question particles removed first)."""
    q = unicodedata.normalize("NFKC", question).lower()
    q = _ZH_FILLER.sub(" ", q)
    terms = [t for t in tokenize(q) if t not in _QUESTION_WORDS and not _single_cjk(t)
             and not (t.isascii() and t.isalpha() and len(t) < 3)]
    return list(dict.fromkeys(terms))


def _single_cjk(token: str) -> bool:
    return len(token) == 1 and not token.isascii()


def term_set(text: str) -> set[str]:
    """The tokens of ``text`` plus 5-letter prefixes of long Latin words ("calculators" meets
    "calculator", "exams" meets "exam")."""
    tokens = set(tokenize(unicodedata.normalize("NFKC", text).lower()))
    return tokens | {"~" + t[:5] for t in tokens if t.isascii() and len(t) >= 5}


_CODE = re.compile(r"\b([A-Za-z]{2,4})\s?-?(\d{3})\b")


def codes(text: str) -> set[str]:
    """Course and room codes ("CS 214", "ML201", "CH-110"), normalised to "cs214"."""
    return {a.lower() + b for a, b in _CODE.findall(unicodedata.normalize("NFKC", text))}


def has_term(term: str, terms: set[str]) -> bool:
    return term in terms or (term.isascii() and len(term) >= 5 and "~" + term[:5] in terms)


def coverage(terms: list[str], text: str, weights: dict[str, float] | None = None) -> float:
    """(Weighted) share of ``terms`` found in ``text``."""
    if not terms:
        return 1.0
    present = term_set(text)
    total = sum((weights or {}).get(t, 1.0) for t in terms)
    found = sum((weights or {}).get(t, 1.0) for t in terms if has_term(t, present))
    return found / total if total else 1.0


# -- polarity ---------------------------------------------------------------------------------

_NEGATION = re.compile(r"\b(?:not|no|never|cannot|can't|cant|mustn't|won't|isn't|aren't|don't|"
                       r"doesn't|didn't|shouldn't|prohibited|forbidden|banned|none|nor|neither|"
                       r"without|except|only)\b|n't\b|不|没|禁止|严禁|不得|无|非|勿|未|仅|只", re.I)


def negated(text: str) -> bool:
    """Whether ``text`` carries a negation or restriction cue (not, cannot, only, 不得, 禁止…)."""
    return bool(_NEGATION.search(unicodedata.normalize("NFKC", text)))


_YES_START = re.compile(r"^\s*(?:yes|yeah|yep|sure|of course|certainly|absolutely|correct|"
                        r"that's right|是的|是|可以|能|对|没错|当然|允许)(?:\b|[，,。.!！])", re.I)
_NO_START = re.compile(r"^\s*(?:no|nope|not|never|不|不行|不可以|不能|不允许|没有|否)"
                       r"(?:\b|[，,。.!！])", re.I)


def stance(text: str) -> str | None:
    """``yes`` / ``no`` when an answer opens with one, else ``None``."""
    t = unicodedata.normalize("NFKC", text)
    if _NO_START.search(t):
        return "no"
    if _YES_START.search(t):
        return "yes"
    return None


# -- numbers ----------------------------------------------------------------------------------

def _zh_number(text: str) -> int | None:
    total, section, current = 0, 0, 0
    for ch in text:
        if ch in ZH_DIGITS:
            current = ZH_DIGITS[ch]
        elif ch == "十":
            section += (current or 1) * 10
            current = 0
        elif ch == "百":
            section += (current or 1) * 100
            current = 0
        elif ch == "千":
            section += (current or 1) * 1000
            current = 0
        elif ch == "万":
            total += (section + current) * 10000
            section, current = 0, 0
        else:
            return None
    return total + section + current


_NUM_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[零〇一二两三四五六七八九十百千万]+|\b(?:"
                        + "|".join(EN_NUMBERS) + r")\b", re.I)


@dataclass(frozen=True)
class Number:
    text: str
    value: float


def numbers(text: str) -> list[Number]:
    """Numbers written as digits, English words or Chinese numerals, with their value."""
    out: list[Number] = []
    for m in _NUM_TOKEN.finditer(unicodedata.normalize("NFKC", text)):
        tok = m.group()
        if tok[0].isdigit():
            try:
                value = float(tok.replace(",", ""))
            except ValueError:
                continue
        elif tok.lower() in EN_NUMBERS:
            value = float(EN_NUMBERS[tok.lower()])
        else:
            zh = _zh_number(tok)
            if zh is None:
                continue
            value = float(zh)
        out.append(Number(tok, value))
    return out


# -- institution questions ------------------------------------------------------------------

_INSTITUTION = re.compile(
    r"\b(?:course|class|module|syllabus|handbook|exam|exams|midterm|final|quiz|lecture|lectures|"
    r"lab|labs|assignment|assignments|homework|project|deadline|due|grade|grades|grading|credit|"
    r"credits|fee|fees|tuition|price|cost|refund|fine|textbook|book|library|room|office hours?|"
    r"ta|tas|teaching assistant|lecturer|professor|instructor|teacher|tutor|semester|term|"
    r"enrol|enroll|register|registration|campus|school|college|university|department|policy|"
    r"rule|rules|attendance|absence|late|extension|grace|plagiarism|safety|parking|canteen|"
    r"dorm|scholarship|[A-Z]{2,4}\s?\d{3})\b|课程|这门课|考试|期中|期末|测验|讲课|上课|实验|作业|"
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
