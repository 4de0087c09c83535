"""A deployment for a Chinese operator needs no US defaults (issue 21): the pack's operator profile fills what an
import leaves out and says how the bot addresses a person and whom it names as brand, callback and helpline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from duebot.accounts.importer import import_csv
from duebot.accounts.models import Account
from duebot.accounts.store import AccountStore
from duebot.actions.strategy import load_strategy
from duebot.actions.turn import Turn
from duebot.policies.packs import PACK_DIR, PackError, load_pack, parse_pack, profile_of

TODAY = dt.date(2026, 11, 24)


def _import(tmp_path: Path, rows: str, **kwargs) -> AccountStore:  # noqa: ANN003
    store = AccountStore(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    path = tmp_path / "a.csv"
    path.write_text("account_id,name,phone,amount,due_date,pack,language,currency,timezone\n" + rows,
                    encoding="utf-8")
    report = import_csv(path, store, today=TODAY, **kwargs)
    assert not report.errors, report.errors
    return store


def test_a_chinese_row_that_says_little_gets_the_cn_profile(tmp_path: Path) -> None:
    store = _import(tmp_path, "Z-1,王芳,139 1099 7777,210,2026-10-25,,,,\n")  # a national number, nothing else
    account = store.get_account("Z-1")
    assert account.phone == "+8613910997777"  # read as a Chinese number: the default pack's region
    assert (account.pack, account.currency, account.language, account.timezone) == ("cn", "CNY", "zh",
                                                                                    "Asia/Shanghai")


def test_a_us_row_keeps_the_us_profile_and_its_own_region(tmp_path: Path) -> None:
    store = _import(tmp_path, "A-1,Jane Doe,(415) 555-0101,230.50,2026-10-20,us,,,\n")
    account = store.get_account("A-1")
    assert account.phone == "+14155550101"  # the row's pack decides the region of a national number
    assert (account.currency, account.language, account.timezone) == ("USD", "en", None)


def test_what_the_row_says_wins_over_the_profile(tmp_path: Path) -> None:
    store = _import(tmp_path, "C-1,Zhou Min,+86 138 0000 0001,120,2026-10-25,cn,en,USD,Asia/Hong_Kong\n")
    account = store.get_account("C-1")
    assert (account.currency, account.language, account.timezone) == ("USD", "en", "Asia/Hong_Kong")


def _turn(account: Account | None, language: str) -> Turn:
    tracker = Tracker("c-1", {}, {"text": "", "intent": {"name": "greet"}}, [], False, None, {}, "action_listen")
    return Turn(CollectingDispatcher(), tracker, account, load_strategy(), language)


def _account(name: str, pack: str) -> Account:
    return Account(id="X", name=name, phone="+8613800000001", amount_due=1, currency="CNY", due_date=TODAY,
                   pack=pack)


@pytest.mark.parametrize("name,pack,addressed", [
    ("王芳", "cn", "王芳"), ("Wang Fang", "cn", "Wang Fang"), ("Jane Doe", "us", "Jane"), ("李 强", "us", "李 强"),
    ("  Jane   Doe ", "us", "Jane")])
def test_the_pack_says_how_a_person_is_addressed(name: str, pack: str, addressed: str) -> None:
    assert _turn(_account(name, pack), "en").name == addressed


def test_brand_callback_and_helpline_come_from_the_pack_in_the_conversation_language() -> None:
    zh, en = _turn(_account("王芳", "cn"), "zh"), _turn(_account("Jane Doe", "us"), "en")
    assert zh.common["operator"] == "您的电信运营商" and "+1" not in zh.common["callback_number"]
    assert en.common["callback_number"] == "+1 800 555 0100"
    assert "12356" in zh.profile.text("crisis_helpline", "zh") and "988" in en.profile.text("crisis_helpline", "en")
    nobody = _turn(None, "zh")  # no account: the default (cn) pack's profile, and no US dollar
    assert nobody.profile.currency == "CNY" and nobody.money(__import__("decimal").Decimal("5")) == "5.00元"


def test_a_profile_is_checked_when_the_pack_loads() -> None:
    doc = yaml.safe_load((PACK_DIR / "cn.yml").read_text(encoding="utf-8"))
    for bad in ({"currency": "yuan"}, {"language": "fr"}, {"timezone": "Mars/Base"}, {"address": "nickname"},
                {"crisis_helpline": {}}, {"brand": {"fr": "x"}}):
        with pytest.raises(PackError, match="profile"):
            parse_pack({**doc, "profile": {**doc["profile"], **bad}})
    gate_only = parse_pack({k: v for k, v in doc.items() if k != "profile"})
    assert gate_only.profile is None and load_pack("cn").profile is not None
    assert profile_of("no-such-pack") == load_pack("cn").profile
