"""The one masking module: pages, exports and logs all go through `Masker`.

Four categories of personal data (seed 000 §1.3.2/§5.2): names, ID numbers (incl. dates of birth used as a
verification factor), phone numbers and amounts. Free text is masked two ways: the values the account store
knows about the conversation's subscriber (exact name, phone, ID digits, birth date, amount), and patterns
that catch what the store does not know (any phone-like number, currency amounts, long digit runs, a name
introduced with "my name is"). A role sees a category only when the role needs it, or after a logged unmask.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

CATEGORIES = ("name", "id_number", "phone", "amount")
TOKEN = {c: f"[{c.replace('_', ' ')}]" for c in CATEGORIES}

# No `\b` anywhere: Python counts CJK characters as word characters, so "号码13812345678谢谢" has no boundary
# around the number. Edges are explicit lookarounds on ASCII letters and digits (\d includes full-width digits).
_L, _R = r"(?<![\dA-Za-z])", r"(?![\dA-Za-z])"
_DATE = rf"{_L}\d{{4}}-\d{{2}}-\d{{2}}(?:T[\d:.]+Z?)?{_R}|{_L}\d{{4}}年\d{{1,2}}月\d{{1,2}}[日号]"
_PHONE = (rf"(?<![\dA-Za-z.+])\+\d[\d ().-]{{6,18}}\d{_R}"          # international, any country
          rf"|{_L}\(?\d{{3}}\)?[ .-]\d{{3}}[ .-]\d{{4}}{_R}"         # North American
          rf"|{_L}1\d{{10}}{_R}"                                     # 11 digits from 1: CN mobile, US with 1
          rf"|{_L}1[3-9]\d[ -]\d{{4}}[ -]\d{{4}}{_R}"                # CN mobile written 138 1234 5678
          rf"|{_L}0\d{{2,3}}-\d{{7,8}}{_R}")                         # CN landline 010-12345678
_CN_NUMERAL = "零〇一二两三四五六七八九十百千万亿点"
_UNIT = r"(?:[万千百]\s?)?(?:元|块|美元|人民币|(?:dollars?|yuan|USD|CNY|RMB|rmb|EUR)(?![A-Za-z]))"
_AMOUNT = (rf"(?:[$¥￥€£]|(?<![A-Za-z])(?:USD|CNY|RMB|EUR)\s?|人民币\s?)\s?\d[\d,]*(?:\.\d{{1,2}})?"
           rf"(?:\s?(?:[万千百]\s?)?(?:元|块))?"
           rf"|{_L}\d[\d,]*(?:\.\d{{1,2}})?\s?{_UNIT}"
           rf"|[{_CN_NUMERAL}]{{2,}}(?:元|块|美元)")                 # 二百三十元, 两千块
_ID = (rf"{_L}\d{{17}}[\dXxＸｘ]{_R}"                                 # CN resident ID, check digit may be X
       rf"|{_L}\d{{6}} \d{{8}} \d{{3}}[\dXxＸｘ]{_R}"
       rf"|{_L}\d{{4,16}}{_R}")
_INTRO = (r"(?i:(?<![A-Za-z])(?:my name is|i am|i'm|name's|call me)\s+)"
          r"(?P<name>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?)")
# Chinese names: no spaces to end them, so a name is a known surname and one or two more characters that are not
# common particles; it is taken after an introduction (我是, 我叫, 本人, 这里是, 您是) or before 本人/先生/女士/小姐.
# After 我叫/名字是 any two or three characters are a name (小明). Over-masking a word is preferred to leaking a name.
_SURNAMES = ("欧阳|司马|诸葛|上官|东方|皇甫|慕容|令狐|夏侯|尉迟|长孙|宇文|司徒|"
             "[王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖萧田董袁潘蒋蔡余于杜叶程苏魏吕丁"
             "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
             "戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪"
             "梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳欧管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪"
             "简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎"
             "甄丛仲虞敖巩明佘池查麻苑迟邝]")
_PARTICLES = "本的了吗呢吧啊呀嘛哦哈是在不也就还都要想说来去有没和跟给家"
_GIVEN = rf"(?:(?![{_PARTICLES}先女小同老])[\u3400-\u9fff])"  # not the start of 先生/女士/小姐/同志/老师
_CALLED = rf"(?:(?![{_PARTICLES}])[\u3400-\u9fff])"
_ZH_NAME = rf"(?:{_SURNAMES}){_GIVEN}{{1,2}}"
_ZH_INTRO = (rf"(?:我是|本人|这里是|您是|你是|我姓|我就是)(?P<zh_name>{_ZH_NAME})"
             rf"|(?:我叫|名字是|名字叫|叫我)(?P<zh_called>{_ZH_NAME}|{_CALLED}{{2,3}})"
             rf"|(?P<zh_before>(?:{_SURNAMES}){_GIVEN}{{0,2}})(?=本人|先生|女士|小姐)")
# One pass, first alternative wins: a date is not an ID number, a phone number is not an amount.
_PATTERN = re.compile(rf"(?P<date>{_DATE})|(?P<phone>{_PHONE})|(?P<amount>{_AMOUNT})|(?P<id_number>{_ID})"
                      rf"|{_INTRO}|{_ZH_INTRO}")
_NAME_GROUPS = ("name", "zh_name", "zh_called", "zh_before")
_CJK = re.compile(r"[\u3400-\u9fff]")
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "令狐", "夏侯", "尉迟", "长孙", "宇文",
                      "司徒")
_HONORIFICS = "先生|女士|小姐|老师|总|经理"


@dataclass(frozen=True)
class Known:
    """What the account store knows about a conversation's subscriber: masked wherever it appears."""

    names: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()  # ID digits and birth dates
    amounts: tuple[str, ...] = ()

    @classmethod
    def of_account(cls, account: object | None) -> Known:
        if account is None:
            return cls()
        name = str(getattr(account, "name", "") or "")
        phone = str(getattr(account, "phone", "") or "")
        phones = (phone, phone.lstrip("+"), phone[-10:]) if phone else ()
        if phone.startswith("+86"):
            phones += (phone[3:],)  # the national form of a Chinese number: 13910998888
        ids = tuple(str(v) for v in (getattr(account, "id_last4", None), getattr(account, "birth_date", None)) if v)
        birth = getattr(account, "birth_date", None)
        if birth is not None and hasattr(birth, "year"):
            ids += _birth_forms(birth)
        amount = getattr(account, "amount_due", None)
        amounts = _amount_forms(amount) if amount is not None else ()
        return cls(_name_forms(name), tuple(p for p in phones if len(p) >= 7), ids, amounts)


def _name_forms(name: str) -> tuple[str, ...]:
    """The full name, each part of two characters or more, in either script ("王芳 Wang Fang", "Wang Fang",
    "王芳"); of a Chinese name also the given name when it has two characters (张伟明 -> 伟明)."""
    forms = {name.strip()}
    for part in re.split(r"[\s/()（）·・,，]+", name):
        if len(part) >= 2:
            forms.add(part)
        if _CJK.search(part) and len(part) >= 3:
            surname = 2 if part[:2] in _COMPOUND_SURNAMES else 1
            if len(part) - surname >= 2:
                forms.add(part[surname:])
    return tuple(sorted(forms - {""}, key=len, reverse=True))


def _zh_surnames(names: tuple[str, ...]) -> tuple[str, ...]:
    out = set()
    for name in names:
        if _CJK.match(name) and len(name) >= 2 and re.fullmatch(r"[\u3400-\u9fff]+", name):
            out.add(name[:2] if name[:2] in _COMPOUND_SURNAMES else name[0])
    return tuple(out)


def _birth_forms(birth: object) -> tuple[str, ...]:
    y, m, d = birth.year, birth.month, birth.day  # type: ignore[attr-defined]
    return (f"{y}年{m}月{d}日", f"{y}年{m:02d}月{d:02d}日", f"{y}年{m}月{d}号", f"{y}年{m:02d}月{d:02d}号",
            f"{y}{m:02d}{d:02d}", f"{y}/{m:02d}/{d:02d}", f"{y}.{m:02d}.{d:02d}")


def _amount_forms(amount: Decimal | str) -> tuple[str, ...]:
    value = Decimal(str(amount))
    forms = {f"{value:.2f}", f"{value:,.2f}"}
    if value == value.to_integral_value():
        forms |= {f"{int(value)}", f"{int(value):,}"}
    return tuple(sorted(forms, key=len, reverse=True))


@dataclass
class Masker:
    """Masks every category not in `visible`. `Masker.everything()` is for logs: nothing personal shows."""

    visible: frozenset[str] = frozenset()
    known: Known = field(default_factory=Known)

    @classmethod
    def everything(cls) -> Masker:
        return cls(frozenset())

    def masks(self, category: str) -> bool:
        return category not in self.visible

    def value(self, category: str, value: object) -> str:
        """A single field whose category is known (a phone column, an amount cell)."""
        text = "" if value is None else str(value)
        return TOKEN[category] if text and self.masks(category) else text

    def text(self, text: str | None) -> str:
        if not text:
            return text or ""
        if self.visible >= set(CATEGORIES):
            return text
        # patterns first, so "$210.00" becomes one token rather than "$" and a known amount
        return self._known(_PATTERN.sub(self._replace, text))

    def _known(self, text: str) -> str:
        k = self.known
        for category, values in (("phone", k.phones), ("id_number", k.ids), ("amount", k.amounts),
                                 ("name", k.names)):
            if not self.masks(category):
                continue
            for value in sorted(values, key=len, reverse=True):
                if category == "name" and _CJK.search(value):
                    text = text.replace(value, TOKEN[category])  # no word edges in Chinese text
                elif category == "name":
                    text = re.sub(rf"(?i)(?<![A-Za-z]){re.escape(value)}(?![A-Za-z])", TOKEN[category], text)
                else:
                    text = re.sub(rf"(?<![\d.]){re.escape(value)}(?![\d])", TOKEN[category], text)
        if self.masks("name"):  # 王女士, 王先生: the subscriber's surname with a form of address
            for surname in _zh_surnames(k.names):
                text = re.sub(rf"{re.escape(surname)}(?={_HONORIFICS})", TOKEN["name"], text)
        return text

    def _replace(self, m: re.Match[str]) -> str:
        kind = m.lastgroup
        if kind == "id_number" and m.group(0) in self.known.amounts:
            kind = "amount"  # a bare "1210" that is this subscriber's balance is an amount, not an ID
        if kind == "date" or kind is None:
            return m.group(0)
        if kind in _NAME_GROUPS:
            if not self.masks("name"):
                return m.group(0)
            # keep the introduction ("my name is", "我是"), mask only the name itself
            start, end = m.span(kind)
            return m.group(0)[: start - m.start()] + TOKEN["name"] + m.group(0)[end - m.start():]
        return TOKEN[kind] if self.masks(kind) else m.group(0)

    def rows(self, texts: Iterable[str]) -> list[str]:
        return [self.text(t) for t in texts]


class MaskingFilter(logging.Filter):
    """Log lines of the console never carry personal data: the formatted message is masked in place."""

    def __init__(self) -> None:
        super().__init__()
        self.masker = Masker.everything()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.masker.text(record.getMessage())
        record.args = None
        return True


def console_logger() -> logging.Logger:
    logger = logging.getLogger("duebot.console")
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())
    return logger
