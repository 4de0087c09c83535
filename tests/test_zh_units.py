"""Mandarin conversation pieces without Rasa: language routing, how values are written, the responses' zh
variations, Chinese SMS texts, segments and keywords."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml

from duebot.actions.locale import load_locale
from duebot.channels.rasa_client import RasaClient, RasaRouter
from duebot.channels.sms.keywords import Keyword, KeywordMatcher
from duebot.channels.sms.segments import segment_info
from duebot.channels.sms.texts import campaign_text_kind, load_texts, render, text_language
from duebot.evidence.three_elements import _AMOUNT, _DEADLINE, _IDENTITY
from duebot.policies.packs import load_pack
from duebot.secrets import account_signature_matches
from duebot.settings import PROJECT_ROOT, conversation_language, load_settings

DOMAIN = yaml.safe_load((PROJECT_ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
_PLACEHOLDER = re.compile(r"{(\w+)}")


@pytest.mark.parametrize(("tag", "served", "expected"), [
    ("zh", ("en", "zh"), "zh"), ("zh-CN", ("en", "zh"), "zh"), ("zh_Hans", ("en", "zh"), "zh"),
    ("cmn", ("en", "zh"), "zh"), ("ZH", ("en", "zh"), "zh"), ("en", ("en", "zh"), "en"), (None, ("en", "zh"), "en"),
    ("", ("en", "zh"), "en"), ("fr", ("en", "zh"), "en"), ("zh", ("en",), "en"),  # no zh model served: English
])
def test_conversation_language(tag: str | None, served: tuple[str, ...], expected: str) -> None:
    assert conversation_language(tag, served) == expected


def test_served_languages_come_from_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUEBOT_SERVED_LANGUAGES", raising=False)
    assert load_settings().served_languages == ("en",)
    monkeypatch.setenv("DUEBOT_SERVED_LANGUAGES", "en,zh")
    monkeypatch.setenv("DUEBOT_RASA_ZH_PORT", "5999")
    settings = load_settings()
    assert settings.served_languages == ("en", "zh") and settings.rasa_url_for("zh").endswith(":5999")
    monkeypatch.setenv("DUEBOT_SERVED_LANGUAGES", "en,xx")
    with pytest.raises(ValueError, match="DUEBOT_SERVED_LANGUAGES: unknown language xx"):
        load_settings().served_languages  # noqa: B018


def test_every_response_has_a_zh_variation_with_the_same_variables_and_payload() -> None:
    for name, variations in DOMAIN["responses"].items():
        english = [v for v in variations if not v.get("condition")]
        chinese = [v for v in variations if v.get("condition") == [{"type": "slot", "name": "language",
                                                                     "value": "zh"}]]
        assert len(english) == 1 and len(chinese) == 1, name
        assert set(_PLACEHOLDER.findall(chinese[0]["text"])) == set(_PLACEHOLDER.findall(english[0]["text"])), name
        assert chinese[0].get("custom") == english[0].get("custom"), name
        assert re.search(r"[\u4e00-\u9fff]", chinese[0]["text"]), name
    assert "language" in DOMAIN["slots"] and DOMAIN["slots"]["language"]["influence_conversation"] is False


def test_the_chinese_disclosure_carries_the_three_elements() -> None:
    """The cn pack's script elements, found by the evidence log's own text patterns too (not only the tags)."""
    zh = load_locale("zh")
    template = next(v for v in DOMAIN["responses"]["utter_disclosure"] if v.get("condition"))["text"]
    said = template.format(name="王芳", collector_notice="", operator="您的电信运营商",
                           amount=zh.money(Decimal("210"), "CNY"), deadline=zh.day(dt.date(2026, 12, 8)))
    assert _IDENTITY.search(said) and _AMOUNT.search(said).group(0) == "210.00元"
    assert _DEADLINE.search(said).group(0) == "12月8日"
    help_zh = next(v for v in DOMAIN["responses"]["utter_help"] if v.get("condition"))["text"]
    assert "退订" in help_zh and "TD" in help_zh


def test_values_are_written_per_language() -> None:
    en, zh = load_locale("en"), load_locale("zh")
    friday = dt.date(2026, 11, 27)
    # English exactly as before there was a locale file
    assert en.day(friday) == f"{friday:%A} {friday.day} {friday:%B}" == "Friday 27 November"
    assert en.money(Decimal("1200"), "USD") == "$1,200.00" and en.money(Decimal("5"), "CHF") == "5.00 CHF"
    assert zh.day(friday) == "11月27日（星期五）"
    assert zh.money(Decimal("230.5"), "CNY") == "230.50元" and zh.money(Decimal("1200"), "USD") == "1,200.00美元"
    parts = [(friday, "70.00元"), (dt.date(2026, 12, 27), "70.00元")]
    assert zh.schedule(parts) == "11月27日（星期五）支付70.00元；12月27日（星期日）支付70.00元"
    assert en.schedule([(friday, "$70.00")]) == "$70.00 on Friday 27 November"
    strategy = {"collector_notice": {"us": "This is a communication from a debt collector. "}, "deadline_days": 14,
                "localized": {}}
    assert zh.strategy_value(strategy, "collector_notice")["us"] == "本信息来自债务催收方。"
    assert en.strategy_value(strategy, "collector_notice")["us"].startswith("This is a communication")
    strategy["localized"] = {"zh": {"collector_notice": {"us": "某某"}}}
    assert zh.strategy_value(strategy, "collector_notice") == {"us": "某某"}
    assert zh.strategy_value(strategy, "deadline_days") == 14
    with pytest.raises(ValueError, match="unknown language"):
        load_locale("fr")


class _Recorder(httpx.AsyncBaseTransport):
    def __init__(self, name: str, seen: list[tuple[str, dict[str, Any]]]) -> None:
        self.name, self.seen = name, seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import json

        self.seen.append((self.name, json.loads(request.content)["metadata"]))
        return httpx.Response(200, json=[{"text": self.name}])


def _client(name: str, seen: list) -> RasaClient:
    client = RasaClient(f"http://{name}.invalid")
    client._client = httpx.AsyncClient(transport=_Recorder(name, seen))
    return client


def test_the_router_sends_each_conversation_to_its_languages_server() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    router = RasaRouter({"en": _client("en", seen), "zh": _client("zh", seen)})
    english_only = RasaRouter.of(_client("en", seen))

    async def run() -> None:
        await router.ask("sms:Z-1", "你好", "Z-1", "sms", "zh-CN")
        await router.ask("sms:A-1", "hello", "A-1", "sms", "en")
        await english_only.ask("sms:Z-1", "你好", "Z-1", "sms", "zh")

    asyncio.run(run())
    # every message that names an account carries the channel's signature for that conversation
    senders = ["sms:Z-1", "sms:A-1", "sms:Z-1"]
    assert all(account_signature_matches(sender, meta["account_id"], meta.pop("account_sig"))
               for sender, (_, meta) in zip(senders, seen, strict=True))
    assert seen == [("zh", {"account_id": "Z-1", "channel": "sms", "language": "zh"}),
                    ("en", {"account_id": "A-1", "channel": "sms"}),  # English metadata as before
                    ("en", {"account_id": "Z-1", "channel": "sms", "language": "en"})]  # told: held in English
    with pytest.raises(ValueError, match="default language"):
        RasaRouter({"zh": _client("zh", seen)})


def test_chinese_sms_are_ucs2_70_then_67_per_segment() -> None:
    assert segment_info("您" * 70).segments == 1 and segment_info("您" * 70).encoding == "UCS-2"
    assert segment_info("您" * 71).segments == 2 and segment_info("您" * 71).per_segment == 67
    assert segment_info("您" * 134).segments == 2 and segment_info("您" * 135).segments == 3
    assert segment_info("a" * 69 + "您").segments == 1  # one Chinese character makes the whole text UCS-2


def test_chinese_texts_and_the_cn_packs_opt_out() -> None:
    cn = load_pack("cn")
    assert cn.sms_opt_out_notice == "回复TD退订"
    matcher = KeywordMatcher(cn.opt_out_keywords)
    for word in ("退订", "TD", "td", "退订。", " 退订！", "ＴＤ"):
        assert matcher.classify(word) is Keyword.OPT_OUT, word
    assert matcher.classify("我不想退订") is None and matcher.classify("帮助") is Keyword.HELP
    assert text_language("zh-CN") == "zh" and text_language(None, "退订") == "zh"
    assert text_language(None, "STOP") == "en"
    reminder = render("reminder", "zh", brand="某某电信")
    assert reminder.startswith("【某某电信】") and segment_info(reminder + " " + cn.sms_opt_out_notice).segments == 1
    assert "退订" in render("opt_out", "zh", brand="x") and "TD" in render("help", "zh", brand="x", stop="TD",
                                                                        help_contact="拨打10000")
    for language, texts in load_texts().items():
        assert set(texts) == {"opt_out", "opt_in", "help", "reminder", "credit_repair", "small_repayment"}, language
        assert all(segment_info(render(kind, language, brand="Acme") + " Reply STOP to opt out.").segments <= 4
                   for kind in ("credit_repair", "small_repayment"))
    assert campaign_text_kind("sms_credit_repair") == "credit_repair" and campaign_text_kind("sms_1") == "reminder"
    assert campaign_text_kind("sms_help") == "reminder"  # keyword answers are never a campaign text


def test_the_shell_talks_as_an_account_in_its_language(tmp_path) -> None:
    """`duebot shell --account Z-1` goes to the zh Rasa port; an unknown account is a clear error."""
    import os
    import subprocess
    import sys

    from duebot.accounts.importer import import_csv
    from duebot.accounts.store import AccountStore
    from duebot.processes import free_port

    report = import_csv(PROJECT_ROOT / "tests" / "fixtures" / "accounts_zh.csv",
                        AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}"))
    assert report.created == 4
    zh_port = free_port()
    env = {**os.environ, "DUEBOT_DATA_DIR": str(tmp_path), "DUEBOT_RASA_ZH_PORT": str(zh_port)}
    shell = [sys.executable, "-m", "duebot.cli", "shell"]
    result = subprocess.run([*shell, "--account", "Z-1"], input="你好\n", capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 1 and f"127.0.0.1:{zh_port}" in result.stdout, result.stdout  # nothing listens
    result = subprocess.run([*shell, "--account", "nobody"], input="", capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 2 and "no account 'nobody'" in result.stderr + result.stdout
