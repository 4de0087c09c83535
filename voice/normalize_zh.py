"""Text normaliser for Mandarin speech: the same interface as voice/normalize.py (`normalize_for_speech`,
`split_sentences`), picked by the call's language (`voice.normalize.speech_normaliser`).

A Chinese voice reads "230.50元" as "二百三十点五零元" or skips the digits, and "13800138000" as one huge number;
espeak-ng's Mandarin voice reads digits in English. So every ASCII digit is written out in characters first.
The conventions (docs/voice.md, "Mandarin"):

- money in 元/角/分: 230.50元, ¥230.50 and 230.5元 are 二百三十元五角; 230.05元 is 二百三十元零五分; 块 amounts are
  read 块/毛/分 as written; other currencies as a decimal and their name ($1.50 is 一点五美元);
- 两, as spoken Mandarin has it: 2 before 千, 万 and 亿 (两千, 一万两千, 两万, 两亿), a leading 2 before a round 百
  (两百, 两百万, but 二百三十), and a lone 2 before a measure word (两元, 两个月, 两点); 二 everywhere else (二十二,
  一百零二, 第二, 二月, 百分之二, 按二);
- digit strings, read digit by digit with 幺 for 1 as operators do: mobile numbers (grouped 3-4-4), resident ID
  numbers (6-8-4, a final X is 艾克斯), numbers of four or more digits without a unit, hyphenated numbers
  (hotlines, landlines), case and bill numbers of capitals and digits (D-3F9A0C12), and any number after 尾号,
  验证码, 密码, 工号, 编号, 号码, 卡号, 账号, 分机… Years are read digit by digit with 一 (二零二六年);
- dates with their year when written with one: 2026-12-08 is 二零二六年十二月八日, 12月8日 is 十二月八日;
- times on the 12-hour clock with the part of day: 14:30 is 下午两点半, 09:05 is 上午九点零五分, 00:00 is 凌晨零点;
- percentages: 5% is 百分之五, 12.5% is 百分之十二点五.
"""

from __future__ import annotations

import re
from datetime import date

DIGITS = "零一二三四五六七八九"
_PLACES = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
_GROUPS = ("", "万", "亿", "万亿")
MOBILE_ONE, YEAR_ONE = "幺", "一"  # 1 in digit strings (operators' usage) and in years
ID_X = "艾克斯"  # the letter X ending a resident ID number

# Words a count of things is followed by: a lone 2 before them is 两 (两元, 两个月), and a number before them is a
# quantity, never a digit string (10000元 is 一万元).
_MEASURE = (r"(?:个|次|期|天|周|年|岁|笔|条|位|张|台|份|项|种|倍|元|块|角|毛|分|秒|户|人|家|小时|分钟|点|万|亿|千|百|"
            r"部|本|封|件|样|名|遍|声|下|美元|欧元|英镑|港元)")
_CODE_WORDS = (r"(?:尾号|验证码|校验码|密码|工号|编号|号码|手机号|电话|卡号|账号|帐号|分机号?|代码|单号|热线|客服电话|"
               r"身份证号?|证件号)")
_PART_OF_DAY = r"(?:凌晨|清晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|半夜)"

_FULL_WIDTH = str.maketrans("０１２３４５６７８９％＋￥", "0123456789%+¥")


def cardinal(n: int, measure: bool = False) -> str:
    """An integer in Chinese numerals; `measure`: a measure word follows, so a lone 2 is 两 (两元), not 二."""
    if n < 0:
        return "负" + cardinal(-n, measure)
    if n == 0:
        return DIGITS[0]
    if n == 2:
        return "两" if measure else "二"
    if n >= 10 ** (4 * len(_GROUPS)):
        return digits(str(n), YEAR_ONE)
    groups: list[int] = []
    while n:
        n, group = divmod(n, 10000)
        groups.append(group)
    out = ""
    zero = False  # a zero is due before the next non-zero digit
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero = bool(out)
            continue
        if out and (zero or group < 1000):
            out += DIGITS[0]
        out += _group(group, leading=not out, before_unit=bool(_GROUPS[index])) + _GROUPS[index]
        zero = False
    return out


def _group(n: int, *, leading: bool, before_unit: bool) -> str:
    """One group of four digits (0 < n < 10000); `leading`: the first group of the number."""
    out, zero = "", False
    for value, place in _PLACES:
        digit, n = divmod(n, value)
        round_hundreds = place == "百" and n == 0  # 两百, 两百万; but 二百三十
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += DIGITS[0]
            zero = False
        first = not out and leading
        if digit == 1 and place == "十" and first:
            out += "十"  # 十五, 十万: not 一十
        elif digit == 2 and (place == "千" or (round_hundreds and first) or (not place and first and before_unit)):
            out += "两" + place  # 两千; 两百 when round and at the head; 两万 / 两亿 (the group is just 2)
        else:
            out += DIGITS[digit] + place
    return out


def digits(text: str, one: str = MOBILE_ONE) -> str:
    """Digit by digit: 10086 is 幺零零八六 (`one` = 一 for years)."""
    return "".join(one if ch == "1" else DIGITS[int(ch)] for ch in text if ch.isdigit())


def decimal(text: str) -> str:
    """12.5 is 十二点五; the digits after the point one by one, trailing zeros dropped (0.50 is 零点五)."""
    whole, _, frac = text.replace(",", "").partition(".")
    frac = frac.rstrip("0")
    head = cardinal(int(whole or "0"))
    return head + ("点" + digits(frac, YEAR_ONE) if frac else "")


def money(amount: str, unit: str = "元") -> str:
    """230.50 元 is 二百三十元五角; 块 amounts are read 块/毛/分; other units (美元…) as a decimal."""
    amount = amount.replace(",", "")
    if unit not in ("元", "块"):
        return decimal(amount) + unit
    tenth, hundredth = ("角", "分") if unit == "元" else ("毛", "分")
    whole, _, frac = amount.partition(".")
    major = int(whole or "0")
    jiao, fen = (int(ch) for ch in (frac + "00")[:2])
    parts = [cardinal(major, measure=True) + unit] if major or not (jiao or fen) else []
    if jiao:
        parts.append(cardinal(jiao, measure=True) + tenth)
    if fen:
        if parts and not jiao:
            parts.append(DIGITS[0])
        parts.append(cardinal(fen, measure=True) + hundredth)
    return "".join(parts)


def date_words(value: date, with_year: bool = True) -> str:
    text = f"{cardinal(value.month)}月{cardinal(value.day)}日"
    return f"{digits(str(value.year), YEAR_ONE)}年{text}" if with_year else text


def time_words(hour: int, minute: int, part_of_day: bool = True, half: bool = True) -> str:
    """下午两点半; without `part_of_day` (the text already says 下午) the hour as written, 24-hour or not;
    without `half`, 30 minutes are 三十分 (the text wrote 30分)."""
    if part_of_day:
        period = ("凌晨" if hour < 6 else "早上" if hour < 9 else "上午" if hour < 12 else "中午" if hour < 13
                  else "下午" if hour < 18 else "晚上")
        shown = hour if hour <= 12 else hour - 12
    else:
        period, shown = "", hour
    text = f"{period}{cardinal(shown, measure=True)}点"
    if minute == 30 and half:
        return text + "半"
    if minute == 0:
        return text
    return text + (DIGITS[0] if minute < 10 else "") + cardinal(minute) + "分"


_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MONEY_BEFORE = re.compile(rf"(¥|RMB|CNY|人民币|US\$|\$|€|£|HK\$)\s?({_NUM})(\s?元)?", re.IGNORECASE)
_MONEY_AFTER = re.compile(rf"({_NUM})\s?(元|块|美元|欧元|英镑|港元|日元)")
_SYMBOL_UNIT = {"¥": "元", "rmb": "元", "cny": "元", "人民币": "元", "$": "美元", "us$": "美元", "€": "欧元",
                "£": "英镑", "hk$": "港元"}
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d.])(?:日|号)?")
_YEAR = re.compile(r"(?<![\d.])(\d{4}|\d{2})年(?=\s?\d{1,2}月)|(?<![\d.])(\d{4})年")
_MONTH_DAY = re.compile(r"(?<![\d.])(\d{1,2})月(?:(\d{1,2})(日|号))?")
_DAY = re.compile(r"(?<![\d.])(\d{1,2})(日|号)")
_TIME = re.compile(rf"(?:({_PART_OF_DAY})\s?)?(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?![\d:])")
_CLOCK = re.compile(rf"({_PART_OF_DAY})?(?<![\d.])(\d{{1,2}})点(?:(\d{{1,2}})分|(半))?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_SCALED = re.compile(r"(\d+(?:\.\d+)?)\s?(万亿|万|亿)")
_GROUPED = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")
_PLUS_86 = re.compile(r"\+\s?86[\s-]?(?=1\d)")
_MOBILE = re.compile(r"(?<![\d.])(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?![\d.])")
_RESIDENT_ID = re.compile(r"(?<![\d.])(\d{6})\s?(\d{8})\s?(\d{3}[\dXx])(?![\dA-Za-z])")
# Case and bill numbers (D-3F9A0C12, A2026120800042): capitals and digits, each run of digits read digit by digit.
_ALPHANUMERIC = re.compile(r"(?<![A-Za-z0-9])(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])"
                           r"[A-Z0-9]+(?:-[A-Z0-9]+)*(?![A-Za-z0-9])")
_AFTER_CODE_WORD = re.compile(rf"({_CODE_WORDS}\s?(?:是|为|：|:)?\s?)(\d+(?:[\s-]\d+)*)")
_HYPHENATED = re.compile(r"(?<![\d.])\d+(?:[-\s]\d+)+(?![\d.])")
_RANGE = re.compile(rf"(\d+)\s?[-~～—到至]\s?(\d+)(?=\s?{_MEASURE})")
_ORDINAL = re.compile(r"第\s?(\d+)")
_LONG = re.compile(r"(?<![\d.])\d{4,}(?![\d.])")
_COUNT = re.compile(rf"(?<![\d.])(\d+)(?=\s?{_MEASURE})")
_DECIMAL = re.compile(r"(?<![\d.])(\d+\.\d+)(?![\d.])")
_NUMBER = re.compile(r"\d+")


def _money_before(match: re.Match[str]) -> str:
    symbol = match.group(1)
    said = symbol if symbol == "人民币" else ""  # a word of the sentence, not a sign: it stays
    return said + money(match.group(2), _SYMBOL_UNIT[symbol.lower()])


def _iso_date(match: re.Match[str]) -> str:
    try:
        return date_words(date(int(match.group(1)), int(match.group(2)), int(match.group(3))))
    except ValueError:  # not a date after all: its numbers one by one
        return " ".join(digits(group, YEAR_ONE) for group in match.groups())


def _month_day(match: re.Match[str]) -> str:
    month, day, suffix = match.group(1), match.group(2), match.group(3)
    if not 1 <= int(month) <= 12:
        return match.group(0)
    return f"{cardinal(int(month))}月" + (f"{cardinal(int(day))}{suffix}" if day else "")


def _time(match: re.Match[str]) -> str:
    said, hour, minute = match.group(1), int(match.group(2)), int(match.group(3))
    if said:  # 下午2:30 (or 下午14:30): the text chose the part of day
        return said + time_words(hour if hour <= 12 else hour - 12, minute, part_of_day=False)
    return time_words(hour, minute)


def _clock(match: re.Match[str]) -> str:
    said, hour = match.group(1) or "", int(match.group(2))
    if hour > 24:
        return match.group(0)
    minute = 30 if match.group(4) else int(match.group(3) or 0)
    if minute > 59:
        return match.group(0)
    return said + time_words(hour, minute, part_of_day=False, half=bool(match.group(4)))


def _scaled(match: re.Match[str]) -> str:
    number, unit = match.group(1), match.group(2)
    return (decimal(number) if "." in number else cardinal(int(number), measure=True)) + unit


def _resident_id(match: re.Match[str]) -> str:
    head, birth, tail = match.groups()
    return " ".join((digits(head), digits(birth), digits(tail) + (ID_X if tail[-1] in "Xx" else "")))


def _alphanumeric(match: re.Match[str]) -> str:
    code = match.group(0)
    if len(code.replace("-", "")) < 3:
        return code  # 5G, G7: a name, not a code
    runs = re.findall(r"[A-Z]+|\d+", code)
    return " ".join(digits(run) if run.isdigit() else run for run in runs)


def _digit_groups(text: str) -> str:
    return " ".join(digits(group) for group in re.split(r"[\s-]+", text) if group)


def normalize_for_speech(text: str) -> str:
    """Rewrite money, dates, times, percentages, digit strings and numbers as Chinese characters."""
    text = text.translate(_FULL_WIDTH)
    text = _MONEY_BEFORE.sub(_money_before, text)
    text = _MONEY_AFTER.sub(lambda m: money(m.group(1), m.group(2)), text)
    text = _ISO_DATE.sub(_iso_date, text)
    text = _YEAR.sub(lambda m: digits(m.group(1) or m.group(2), YEAR_ONE) + "年", text)
    text = _MONTH_DAY.sub(_month_day, text)
    text = _DAY.sub(lambda m: cardinal(int(m.group(1))) + m.group(2) if 1 <= int(m.group(1)) <= 31
                    else m.group(0), text)
    text = _TIME.sub(_time, text)
    text = _CLOCK.sub(_clock, text)
    text = _PERCENT.sub(lambda m: "百分之" + decimal(m.group(1)), text)
    text = _SCALED.sub(_scaled, text)
    text = _GROUPED.sub(lambda m: decimal(m.group(0)), text)
    text = _PLUS_86.sub("加八六 ", text)
    text = _RESIDENT_ID.sub(_resident_id, text)
    text = _MOBILE.sub(lambda m: " ".join(digits(g) for g in m.groups()), text)
    text = _ALPHANUMERIC.sub(_alphanumeric, text)
    text = _AFTER_CODE_WORD.sub(lambda m: m.group(1) + _digit_groups(m.group(2)), text)
    text = _RANGE.sub(lambda m: f"{cardinal(int(m.group(1)))}到{cardinal(int(m.group(2)), measure=True)}", text)
    text = _HYPHENATED.sub(lambda m: _digit_groups(m.group(0)) if sum(map(str.isdigit, m.group(0))) >= 5
                           else m.group(0), text)
    text = _ORDINAL.sub(lambda m: "第" + cardinal(int(m.group(1))), text)
    text = _COUNT.sub(lambda m: cardinal(int(m.group(1)), measure=True), text)
    text = _LONG.sub(lambda m: digits(m.group(0)), text)
    text = _DECIMAL.sub(lambda m: decimal(m.group(1)), text)
    text = _NUMBER.sub(lambda m: cardinal(int(m.group(0))), text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


_SENTENCE = re.compile(r".+?(?:[。！？!?；;…]+[”’」』）)\"']*|\.(?=\s)|$)", re.DOTALL)


def split_sentences(text: str) -> list[str]:
    """Sentences for streaming TTS, at 。！？；… (and an English full stop before a space)."""
    return [part for part in (s.strip() for s in _SENTENCE.findall(text.strip())) if part]
