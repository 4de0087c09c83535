"""Masking on Chinese transcripts: no word boundaries between CJK and digits, names without spaces (issue 21)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from duebot.console.masking import Known, Masker

WANG = SimpleNamespace(name="王芳 Wang Fang", phone="+8613910998888", id_last4="4472",
                       birth_date=dt.date(1995, 12, 12), amount_due=Decimal("210.00"))
EVERYTHING = Masker.everything()


@pytest.mark.parametrize(("said", "masked"), [
    ("号码13812345678谢谢", "号码[phone]谢谢"),
    ("我的手机是138 1234 5678，座机010-12345678。", "我的手机是[phone]，座机[phone]。"),
    ("电话+8613812345678打不通", "电话[phone]打不通"),
    ("身份证号11010519491231002X谢谢", "身份证号[id number]谢谢"),
    ("身份证11010519491231002x，尾号4472", "身份证[id number]，尾号[id number]"),
    ("身份证号是110105194912310021对吧", "身份证号是[id number]对吧"),
])
def test_phones_and_ids_inside_chinese_text(said: str, masked: str) -> None:
    assert EVERYTHING.text(said) == masked


@pytest.mark.parametrize(("said", "masked"), [
    ("欠费230.50元", "欠费[amount]"),
    ("您本月欠费230.50元，请尽快缴纳", "您本月欠费[amount]，请尽快缴纳"),
    ("共计人民币300元", "共计[amount]"),
    ("¥45.5和￥1,200.00", "[amount]和[amount]"),
    ("RMB200还是200RMB", "[amount]还是[amount]"),
    ("欠了1.2万元", "欠了[amount]"),
    ("先还两百块可以吗", "先还[amount]可以吗"),
    ("合计二百三十元", "合计[amount]"),
])
def test_amounts_with_chinese_currency(said: str, masked: str) -> None:
    assert EVERYTHING.text(said) == masked


@pytest.mark.parametrize(("said", "masked"), [
    ("请问您是张伟本人吗", "请问您是[name]本人吗"),
    ("我是王芳啊", "我是[name]啊"),
    ("喂，我叫小明", "喂，我叫[name]"),
    ("本人张伟明，电话+8613812345678。", "本人[name]，电话[phone]。"),
    ("这里是李强家", "这里是[name]家"),
    ("欧阳娜娜本人不在", "[name]本人不在"),
    ("刘先生您好", "[name]先生您好"),
])
def test_names_after_an_introduction(said: str, masked: str) -> None:
    assert EVERYTHING.text(said) == masked


@pytest.mark.parametrize("said", ["我们一块去吧", "我是说明天再付", "本人不在家", "好的，谢谢", "这是本人的意思"])
def test_ordinary_chinese_is_left_alone(said: str) -> None:
    assert EVERYTHING.text(said) == said


def test_the_stores_chinese_name_in_both_scripts_and_other_known_values() -> None:
    masker = Masker(frozenset(), Known.of_account(WANG))
    said = "王芳您好，王女士，您的出生日期是1995年12月12日吗？Fang Wang 欠费210元，尾号4472，电话13910998888"
    assert masker.text(said) == ("[name]您好，[name]女士，您的出生日期是[id number]吗？[name] [name] 欠费[amount]，"
                                 "尾号[id number]，电话[phone]")
    assert masker.text("芳芳你好") == "芳芳你好"  # one character of a two-character name is not the name
    three = Masker(frozenset(), Known.of_account(SimpleNamespace(name="张伟明")))
    assert three.text("伟明，张伟明，张总") == "[name]，[name]，[name]总"


def test_visible_categories_stay_visible_in_chinese() -> None:
    said = "我是王芳，欠费230.50元，号码13812345678"
    assert Masker(frozenset({"amount"})).text(said) == "我是[name]，欠费230.50元，号码[phone]"
    assert Masker(frozenset({"name", "phone"})).text(said) == "我是王芳，欠费[amount]，号码13812345678"


def test_english_behaviour_is_kept() -> None:
    free = EVERYTHING.text("my name is Tom Baker, call 13812345678 or (212) 555-0199 about 80 yuan")
    assert free == "my name is [name], call [phone] or [phone] about [amount]"
    assert EVERYTHING.text("I'm Ann, born 1950-03-03, owe $1,200.00 and USD 30") == (
        "I'm [name], born 1950-03-03, owe [amount] and [amount]")
    assert EVERYTHING.text("我说my name is Tom Baker好的") == "我说my name is [name]好的"
