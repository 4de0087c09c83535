"""The Mandarin speech normaliser (voice/normalize_zh.py): what a Chinese voice must say, table by table."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duebot.voice import normalize, normalize_zh
from duebot.voice.normalize import speech_normaliser
from duebot.voice.normalize_zh import cardinal, date_words, digits, money, normalize_for_speech, split_sentences


@pytest.mark.parametrize(("n", "spoken"), [
    (0, "零"), (1, "一"), (2, "二"), (3, "三"), (10, "十"), (11, "十一"), (12, "十二"), (20, "二十"), (22, "二十二"),
    (99, "九十九"), (100, "一百"), (101, "一百零一"), (102, "一百零二"), (110, "一百一十"), (115, "一百一十五"),
    (200, "两百"), (220, "二百二十"), (230, "二百三十"), (999, "九百九十九"), (1000, "一千"), (1005, "一千零五"),
    (1010, "一千零一十"), (1050, "一千零五十"), (1200, "一千二百"), (2000, "两千"), (2002, "两千零二"),
    (2200, "两千二百"), (2300, "两千三百"), (9999, "九千九百九十九"), (10000, "一万"), (10005, "一万零五"),
    (10500, "一万零五百"), (12000, "一万两千"), (20000, "两万"), (20002, "两万零二"), (22000, "两万两千"),
    (100000, "十万"), (100050, "十万零五十"), (100100, "十万零一百"), (101000, "十万一千"), (110000, "十一万"),
    (120000, "十二万"), (200000, "二十万"), (1000000, "一百万"), (1200000, "一百二十万"), (2000000, "两百万"),
    (2300000, "二百三十万"), (20000000, "两千万"), (100000000, "一亿"), (100010000, "一亿零一万"),
    (200000000, "两亿"), (123456789, "一亿两千三百四十五万六千七百八十九"), (-5, "负五"),
])
def test_cardinal_numbers(n: int, spoken: str) -> None:
    assert cardinal(n) == spoken


@pytest.mark.parametrize(("n", "spoken"), [(2, "两"), (12, "十二"), (22, "二十二"), (200, "两百"), (2000, "两千")])
def test_a_lone_two_before_a_measure_word_is_liang(n: int, spoken: str) -> None:
    assert cardinal(n, measure=True) == spoken


@pytest.mark.parametrize(("text", "spoken"), [
    # money: 元/角/分, the sign before or the unit after, thousands separators, 块/毛 as written
    ("230.50元", "二百三十元五角"),
    ("¥230.50", "二百三十元五角"),
    ("￥230.50", "二百三十元五角"),
    ("¥ 230.50元", "二百三十元五角"),
    ("230.5元", "二百三十元五角"),
    ("230.55元", "二百三十元五角五分"),
    ("230.05元", "二百三十元零五分"),
    ("230.00元", "二百三十元"),
    ("230 元", "二百三十元"),
    ("0.50元", "五角"),
    ("0.05元", "五分"),
    ("0元", "零元"),
    ("1005元", "一千零五元"),
    ("10000元", "一万元"),
    ("10,000元", "一万元"),
    ("1,234.56元", "一千二百三十四元五角六分"),
    ("2元", "两元"),
    ("2.20元", "两元两角"),
    ("12元", "十二元"),
    ("200元", "两百元"),
    ("22000元", "两万两千元"),
    ("RMB 58.20", "五十八元两角"),
    ("CNY58.2", "五十八元两角"),
    ("人民币230.50元", "人民币二百三十元五角"),
    ("230.50块", "二百三十块五毛"),
    ("$1.50", "一点五美元"),
    ("$50", "五十美元"),
    ("€20", "二十欧元"),
    ("1.5万元", "一点五万元"),
    ("2万元", "两万元"),
    # bare numbers
    ("10,000", "一万"),
    ("200", "两百"),
    ("按1", "按一"),
    ("请按2", "请按二"),
    ("3.14", "三点一四"),
    ("0.5", "零点五"),
    # counts before a measure word
    ("2个月", "两个月"),
    ("12个月", "十二个月"),
    ("分2期还款", "分两期还款"),
    ("第2期", "第二期"),
    ("3-4个工作日", "三到四个工作日"),
    ("2年", "两年"),
    ("2万", "两万"),
    # digit strings with 幺: phones (mobile 3-4-4), hotlines, landlines, IDs, codes, card tails
    ("13800138000", "幺三八 零零幺三 八零零零"),
    ("138-0013-8000", "幺三八 零零幺三 八零零零"),
    ("+86 138 0013 8000", "加八六 幺三八 零零幺三 八零零零"),
    ("请拨打10086", "请拨打幺零零八六"),
    ("95588", "九五五八八"),
    ("010-12345678", "零幺零 幺二三四五六七八"),
    ("400-810-8888", "四零零 八幺零 八八八八"),
    ("110105194912310021", "幺幺零幺零五 幺九四九幺二三幺 零零二幺"),
    ("11010519491231002X", "幺幺零幺零五 幺九四九幺二三幺 零零二艾克斯"),
    ("11010519491231002x", "幺幺零幺零五 幺九四九幺二三幺 零零二艾克斯"),
    ("验证码是4472", "验证码是四四七二"),
    ("验证码：123456", "验证码：幺二三四五六"),
    ("尾号1234的银行卡", "尾号幺二三四的银行卡"),
    ("工号017", "工号零幺七"),
    ("分机808", "分机八零八"),
    ("请输入4472", "请输入四四七二"),
    ("工单D-3F9A0C12", "工单D 三 F 九 A 零 C 幺二"),
    ("账单编号：A2026120800042", "账单编号：A 二零二六幺二零八零零零四二"),
    ("5G套餐", "五G套餐"),
    ("回复TD退订", "回复TD退订"),
    # dates (the year digit by digit with 一) and times (12-hour clock, with the part of day)
    ("2026-12-08", "二零二六年十二月八日"),
    ("2026/12/8", "二零二六年十二月八日"),
    ("2026.12.08", "二零二六年十二月八日"),
    ("2026年12月8日", "二零二六年十二月八日"),
    ("12月8日", "十二月八日"),
    ("12月8号", "十二月八号"),
    ("02月08日", "二月八日"),
    ("2月", "二月"),
    ("每月21日", "每月二十一日"),
    ("2011年", "二零一一年"),
    ("2026/2/30", "二零二六 二 三零"),
    ("14:30", "下午两点半"),
    ("14：30", "下午两点半"),
    ("09:05", "上午九点零五分"),
    ("08:00", "早上八点"),
    ("12:30", "中午十二点半"),
    ("18:00", "晚上六点"),
    ("23:59", "晚上十一点五十九分"),
    ("00:00", "凌晨零点"),
    ("02:15", "凌晨两点十五分"),
    ("下午2:30", "下午两点半"),
    ("下午14:30", "下午两点半"),
    ("2点半", "两点半"),
    ("14点30分", "十四点三十分"),
    ("下午3点", "下午三点"),
    # percentages
    ("5%", "百分之五"),
    ("12.5%", "百分之十二点五"),
    ("0.5%", "百分之零点五"),
    ("100%", "百分之一百"),
    ("2％", "百分之二"),
    # whole sentences
    ("您本月话费欠费230.50元，请于2026-12-08 18:00前缴清。",
     "您本月话费欠费二百三十元五角，请于二零二六年十二月八日 晚上六点前缴清。"),
    ("您尾号8021的号码已停机，逾期费率为每日0.05%。",
     "您尾号八零二幺的号码已停机，逾期费率为每日百分之零点零五。"),
    ("您输入的身份证号码是11010519491231002X，对吗？",
     "您输入的身份证号码是幺幺零幺零五 幺九四九幺二三幺 零零二艾克斯，对吗？"),
    ("如有疑问请拨打客服热线10086，或于12月8日前到营业厅办理。",
     "如有疑问请拨打客服热线幺零零八六，或于十二月八日前到营业厅办理。"),
    ("您可以分3期，每期2个月，首期1,200元。", "您可以分三期，每期两个月，首期一千二百元。"),
    ("没有数字的句子不变。", "没有数字的句子不变。"),
    # the bot's own Mandarin (bot/locales/zh.yml writes amounts {amount:,.2f}元 and days 12月8日（星期一）)
    ("目前欠费金额为1,234.56元，请于12月8日（星期一）前缴清。",
     "目前欠费金额为一千二百三十四元五角六分，请于十二月八日（星期一）前缴清。"),
    ("12月8日（星期一）支付115.25元；1月8日（星期四）支付115.25元",
     "十二月八日（星期一）支付一百一十五元两角五分；一月八日（星期四）支付一百一十五元两角五分"),
    ("我已将安全缴费链接通过短信发送到您尾号8021的手机，链接24小时内有效。",
     "我已将安全缴费链接通过短信发送到您尾号八零二幺的手机，链接二十四小时内有效。"),
    ("您也可以拨打10000联系我们。", "您也可以拨打幺零零零零联系我们。"),
    ("由于您的账户已逾期超过90天", "由于您的账户已逾期超过九十天"),
])
def test_normaliser_spells_money_dates_digits_times_and_percentages(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


def test_building_blocks() -> None:
    assert money("230.50") == "二百三十元五角"
    assert money("2", "块") == "两块"
    assert digits("10086") == "幺零零八六" and digits("2011", "一") == "二零一一"
    assert date_words(date(2026, 12, 8)) == "二零二六年十二月八日"
    assert date_words(date(2026, 12, 8), with_year=False) == "十二月八日"


@pytest.mark.parametrize(("text", "sentences"), [
    ("您好。请问是张伟先生吗？", ["您好。", "请问是张伟先生吗？"]),
    ("好的！谢谢“再见。”还有", ["好的！", "谢谢“再见。”", "还有"]),
    ("第一句；第二句……第三句", ["第一句；", "第二句……", "第三句"]),
    ("您的欠费为二百三十元五角，请尽快缴清。", ["您的欠费为二百三十元五角，请尽快缴清。"]),
    ("", []),
])
def test_sentences_split_at_chinese_terminators(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_the_call_language_picks_the_normaliser() -> None:
    zh, en = speech_normaliser("zh"), speech_normaliser("en")
    assert (zh.normalize_for_speech, zh.split_sentences) == (normalize_zh.normalize_for_speech,
                                                             normalize_zh.split_sentences)
    assert (en.normalize_for_speech, en.split_sentences) == (normalize.normalize_for_speech, normalize.split_sentences)
    assert zh.normalize_for_speech("2元") == "两元" and en.normalize_for_speech("$2") == "two dollars"
    with pytest.raises(ValueError, match="no speech normaliser for 'fr'"):
        speech_normaliser("fr")


_PIECES = st.sampled_from(["元", "¥", "$", "%", "年", "月", "日", "号", "点", "分", "个", ":", ".", ",", "-", " ", "X",
                           "第", "尾号", "验证码", "下午", "，", "。", "按", "万"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 10**12).map(str), st.from_regex(r"\d{1,3}\.\d{1,2}", fullmatch=True),
                          _PIECES), max_size=12))
def test_no_ascii_digit_survives(pieces: list[str]) -> None:
    """Whatever the bot writes, a Chinese voice is never handed an ASCII digit to read in its own way."""
    spoken = normalize_for_speech("".join(pieces))
    assert not re.search(r"\d", spoken), spoken
