"""cn pack, table-driven at each rule's edges. Subscriber in Shanghai (UTC+8, no DST)."""

from __future__ import annotations

import pytest

from duebot.policies.gate import decide
from duebot.policies.packs import load_pack, parse_pack

from .conftest import DROP, entry, request

CN = load_pack("cn")
TO = "+8613800138000"
SMS_FIRST = [entry("2026-11-20T02:00:00Z", channel="sms", outcome="delivered")]
NOON = "2026-11-24T04:00:00Z"  # 12:00 Shanghai


def run(req: dict, pack=CN) -> dict:
    return decide(req, pack).to_json()


def cn(now: str, **kw) -> dict:
    kw.setdefault("to", TO)
    kw.setdefault("timezone", DROP)
    kw.setdefault("history", SMS_FIRST)
    return request(now, **kw)


@pytest.mark.parametrize("now, allowed, next_at", [
    ("2026-11-23T23:59:59Z", False, "2026-11-24T00:00:00Z"),  # 07:59:59
    ("2026-11-24T00:00:00Z", True, "2026-11-24T00:00:00Z"),   # 08:00:00
    ("2026-11-24T12:59:59Z", True, "2026-11-24T12:59:59Z"),   # 20:59:59
    ("2026-11-24T13:00:00Z", True, "2026-11-24T13:00:00Z"),   # 21:00:00 is fine in cn
    ("2026-11-24T13:59:59Z", True, "2026-11-24T13:59:59Z"),   # 21:59:59
    ("2026-11-24T14:00:00Z", False, "2026-11-25T00:00:00Z"),  # 22:00:00
])
def test_quiet_hours_edges(now: str, allowed: bool, next_at: str) -> None:
    d = run(cn(now))
    assert (d["allowed"], d["reasons"], d["next_allowed_at"], d["pack"]) == (
        allowed, [] if allowed else ["QUIET_HOURS"], next_at, "cn@1")


def test_quiet_hours_use_record_zone_for_roaming_subscriber() -> None:
    # A +86 subscriber whose record says Urumqi (UTC+6): 00:30Z is 06:30 there.
    d = run(cn("2026-11-24T00:30:00Z", timezone="Asia/Urumqi"))
    assert d["reasons"] == ["QUIET_HOURS"] and d["next_allowed_at"] == "2026-11-24T02:00:00Z"


def day_calls(n: int, outcome: str = "no_answer", purpose: str = "collection") -> list[dict]:
    # 08:30, 09:30, ... Shanghai on 2026-11-24
    return [entry(f"2026-11-24T00:{30 + i:02d}:00Z", outcome=outcome, purpose=purpose) for i in range(n)]


@pytest.mark.parametrize("today, allowed, reasons, next_at", [
    (day_calls(1), True, [], NOON),                                            # 2nd call today
    (day_calls(2), False, ["DAILY_CALL_CAP"], "2026-11-25T00:00:00Z"),         # 3rd: midnight, then 08:00
    (day_calls(2, outcome="answered"), False, ["DAILY_CALL_CAP"], "2026-11-25T00:00:00Z"),
    (day_calls(2, outcome="failed"), True, [], NOON),                          # never started
    (day_calls(2, purpose="reminder"), True, [], NOON),                        # reminders are not collection calls
    # 23:30 Shanghai yesterday is another local day (15:30Z on the 23rd)
    ([entry("2026-11-23T15:30:00Z"), entry("2026-11-23T15:40:00Z")], True, [], NOON),
    ([entry("2026-11-23T16:00:00Z"), entry("2026-11-23T16:10:00Z")], False, ["DAILY_CALL_CAP"],
     "2026-11-25T00:00:00Z"),                                                 # 00:00 and 00:10 today
])
def test_daily_call_cap(today: list, allowed: bool, reasons: list, next_at: str) -> None:
    d = run(cn(NOON, history=SMS_FIRST + today))
    assert (d["allowed"], d["reasons"], d["next_allowed_at"]) == (allowed, reasons, next_at)


def test_daily_cap_does_not_hold_sms() -> None:
    assert run(cn(NOON, channel="sms", history=SMS_FIRST + day_calls(2)))["allowed"] is True


def test_daily_cap_is_a_parameter_regulation_allows_three() -> None:
    doc = dict(CN.doc)
    doc["rules"] = [dict(r) for r in CN.doc["rules"]]
    for r in doc["rules"]:
        if r["rule"] == "daily_call_cap":
            r["params"] = {**r["params"], "max_calls": 3}
    loose = parse_pack(doc)
    assert run(cn(NOON, history=SMS_FIRST + day_calls(2)), loose)["allowed"] is True
    assert run(cn(NOON, history=SMS_FIRST + day_calls(3)), loose)["reasons"] == ["DAILY_CALL_CAP"]


@pytest.mark.parametrize("channel, history, reasons", [
    ("voice", [], ["FIRST_CONTACT_MUST_BE_SMS"]),
    ("voice", DROP, ["FIRST_CONTACT_MUST_BE_SMS"]),                            # absent history
    ("sms", [], []),                                                           # SMS may be the first contact
    ("voice", SMS_FIRST, []),
    ("voice", [entry("2026-11-20T02:00:00Z", channel="app", outcome="delivered")], []),
    ("voice", [entry("2026-11-20T02:00:00Z", channel="sms", outcome="failed")], ["FIRST_CONTACT_MUST_BE_SMS"]),
    ("voice", [entry("2026-11-20T02:00:00Z", channel="sms", debt_id="D-9")], ["FIRST_CONTACT_MUST_BE_SMS"]),
    ("voice", [entry("2026-11-25T02:00:00Z", channel="sms")], ["FIRST_CONTACT_MUST_BE_SMS"]),  # future SMS
    ("voice", [entry("2026-11-20T02:00:00Z", channel="voice")], ["FIRST_CONTACT_MUST_BE_SMS"]),
])
def test_first_contact_must_be_sms(channel: str, history: object, reasons: list) -> None:
    d = run(cn(NOON, channel=channel, history=history))
    assert d["reasons"] == reasons
    if reasons:
        assert d["next_allowed_at"] is None  # waiting does not help; sending an SMS does


def reminders(*days: str) -> list[dict]:
    return [entry(f"2026-11-{d}T02:00:00Z", channel="sms", purpose="reminder", outcome="delivered") for d in days]


@pytest.mark.parametrize("history, allowed, next_at", [
    (reminders("20"), True, NOON),
    (reminders("18", "20"), False, "2026-11-25T02:00:00Z"),    # the 18th's ages out 7 days later, 10:00 local
    (reminders("17", "20"), True, NOON),                        # the 17th's is 7 days 2 h old
    (reminders("16", "17"), True, NOON),
])
def test_reminder_cap(history: list, allowed: bool, next_at: str) -> None:
    for channel in ("sms", "voice"):
        d = run(cn(NOON, channel=channel, purpose="reminder", history=SMS_FIRST + history))
        assert (d["allowed"], d["next_allowed_at"]) == (allowed, next_at)
        assert d["reasons"] == ([] if allowed else ["REMINDER_CAP"])
    # collection contact is not capped by reminders
    assert run(cn(NOON, history=SMS_FIRST + reminders("18", "20")))["allowed"] is True


@pytest.mark.parametrize("channel", ["voice", "sms"])
@pytest.mark.parametrize("purpose", ["collection", "reminder", "reply"])
def test_opt_out_holds_every_channel(channel: str, purpose: str) -> None:
    d = run(cn(NOON, channel=channel, purpose=purpose, opted_out=True))
    assert d == {"allowed": False, "reasons": ["OPTED_OUT"], "next_allowed_at": None, "pack": "cn@1"}


@pytest.mark.parametrize("channel", ["voice", "sms"])
@pytest.mark.parametrize("purpose, held", [("collection", True), ("reminder", True), ("reply", False)])
def test_dispute_holds_collection_on_every_channel(channel: str, purpose: str, held: bool) -> None:
    d = run(cn(NOON, channel=channel, purpose=purpose, dispute_open=True))
    assert d["reasons"] == (["DISPUTE_OPEN"] if held else [])


def test_cn_has_no_us_consent_rules() -> None:
    d = run(cn(NOON, consent={"ai_voice": False, "sms": False}))
    assert d["allowed"] is True


def test_local_number_without_country_code_reads_as_chinese() -> None:
    assert run(cn(NOON, to="13800138000"))["allowed"] is True


def test_pack_data() -> None:
    assert CN.id == "cn@1" and CN.retention_years >= 2 and CN.sms_opt_out_notice
