"""The `transactional` purpose (a payment link the subscriber asked for): never a collection contact, held by an
opt-out on every pack, and by quiet hours where the pack says so (cn: not; us: yes)."""

from __future__ import annotations

import pytest
import redis

from duebot.policies import codes
from duebot.policies.audit import MemoryAuditSink
from duebot.policies.gate import PURPOSES, decide
from duebot.policies.packs import PackError, load_pack, parse_pack
from duebot.policies.reserve import LiveGate
from duebot.policies.rules import ALL_PURPOSES, COUNTED_PURPOSES

from .conftest import entry, request

CN, US = load_pack("cn"), load_pack("us")
CN_TO, US_TO = "+8613800138000", "+14155550100"
CN_NOON, CN_23H = "2026-11-24T04:00:00Z", "2026-11-24T15:00:00Z"  # 12:00 and 23:00 in Shanghai
US_NOON, US_23H = "2026-11-24T20:00:00Z", "2026-11-25T07:00:00Z"  # 12:00 and 23:00 in Los Angeles


def cn(now: str, **kw) -> dict:
    return request(now, to=CN_TO, timezone="Asia/Shanghai", channel=kw.pop("channel", "sms"), **kw)


def us(now: str, **kw) -> dict:
    return request(now, to=US_TO, channel=kw.pop("channel", "sms"), **kw)


def reasons(req: dict, pack) -> list[str]:
    return decide(req, pack).to_json()["reasons"]


def test_the_request_schema_and_the_rules_know_the_same_purposes() -> None:
    assert PURPOSES == ALL_PURPOSES and "transactional" in PURPOSES and "transactional" not in COUNTED_PURPOSES


# --- quiet hours: the pack decides ----------------------------------------------------------------------------
@pytest.mark.parametrize("purpose, expected", [("transactional", []), ("collection", ["QUIET_HOURS"]),
                                               ("reminder", ["QUIET_HOURS"]), ("reply", ["QUIET_HOURS"])])
def test_cn_texts_a_requested_link_at_23h_but_nothing_else(purpose: str, expected: list) -> None:
    assert reasons(cn(CN_23H, purpose=purpose), CN) == expected
    assert reasons(cn(CN_NOON, purpose=purpose), CN) == []


@pytest.mark.parametrize("purpose", ["transactional", "collection", "reply"])
def test_us_holds_every_text_at_23h_the_link_too(purpose: str) -> None:
    d = decide(us(US_23H, purpose=purpose), US).to_json()
    assert d["reasons"] == ["QUIET_HOURS"] and d["next_allowed_at"] == "2026-11-25T16:00:00Z"  # 08:00 PST
    assert reasons(us(US_NOON, purpose=purpose), US) == []


def test_quiet_hours_hold_every_purpose_unless_the_pack_lists_them() -> None:
    """A pack written before the parameter existed keeps its behaviour: quiet hours hold a transactional text."""
    pack = parse_pack({"pack": "old", "version": 1, "retention_years": 1,
                       "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours", "params": {"start": "08:00",
                                                                                       "end": "22:00"}}]})
    assert reasons(cn(CN_23H, purpose="transactional"), pack) == ["QUIET_HOURS"]


@pytest.mark.parametrize("purposes, problem", [
    (["transactional"], "collection, reminder"), (["reply", "transactional"], "collection, reminder"),
    (["collection", "transactional"], "reminder"), (["collection", "reminder", "refund"], "purposes must be among")])
def test_no_pack_lifts_quiet_hours_for_collection_or_reminders(purposes: list, problem: str) -> None:
    with pytest.raises(PackError, match=problem):
        parse_pack({"pack": "loose", "version": 1, "retention_years": 1, "rules": [
            {"rule": "opt_out"}, {"rule": "quiet_hours", "params": {"purposes": purposes}}]})


# --- the opt-out always applies -------------------------------------------------------------------------------
@pytest.mark.parametrize("now", [CN_NOON, CN_23H])
def test_an_opt_out_holds_the_link_in_cn(now: str) -> None:
    assert reasons(cn(now, purpose="transactional", opted_out=True), CN) == ["OPTED_OUT"]


def test_an_opt_out_holds_the_link_in_us() -> None:
    assert reasons(us(US_NOON, purpose="transactional", opted_out=True), US) == ["OPTED_OUT"]


# --- never a collection contact: not refused by the caps, not counted by them ------------------------------------
def test_caps_and_first_contact_never_refuse_a_transactional_contact() -> None:
    two_reminders = [entry("2026-11-23T02:00:00Z", channel="sms", purpose="reminder", outcome="delivered"),
                     entry("2026-11-23T03:00:00Z", channel="sms", purpose="reminder", outcome="delivered")]
    assert reasons(cn(CN_NOON, purpose="reminder", history=two_reminders), CN) == ["REMINDER_CAP"]
    assert reasons(cn(CN_NOON, purpose="transactional", history=two_reminders), CN) == []
    calls = [entry(f"2026-11-24T0{h}:00:00Z") for h in range(2)]  # 2 collection calls today, no text before
    assert reasons(cn(CN_NOON, channel="voice", history=calls), CN) == ["DAILY_CALL_CAP", "FIRST_CONTACT_MUST_BE_SMS"]
    assert reasons(cn(CN_NOON, channel="voice", purpose="transactional", history=calls), CN) == []
    seven = [entry(f"2026-11-{18 + i}T19:00:00Z", outcome="conversation") for i in range(7)]
    assert reasons(us(US_NOON, channel="voice", history=seven), US) == ["SEVEN_IN_SEVEN", "RECENT_CONVERSATION"]
    assert reasons(us(US_NOON, channel="voice", purpose="transactional", history=seven), US) == []


def test_past_transactional_texts_count_toward_nothing() -> None:
    links = [entry(f"2026-11-2{d}T0{h}:00:00Z", channel="sms", purpose="transactional", outcome="delivered")
             for d in range(1, 4) for h in range(3)]
    assert reasons(cn(CN_NOON, purpose="reminder", history=links), CN) == []  # nine links: no reminder cap
    # a payment link is not the written first contact a cn collection call needs
    assert reasons(cn(CN_NOON, channel="voice", history=links), CN) == ["FIRST_CONTACT_MUST_BE_SMS"]
    voice = [entry(f"2026-11-{18 + i}T19:00:00Z", purpose="transactional", outcome="conversation") for i in range(7)]
    assert reasons(us(US_NOON, channel="voice", history=voice), US) == []  # not 7 calls, not a conversation
    cn_voice = [entry(f"2026-11-24T0{h}:00:00Z", purpose="transactional") for h in range(3)]
    written = [entry("2026-11-20T02:00:00Z", channel="sms", outcome="delivered")]
    assert reasons(cn(CN_NOON, channel="voice", history=written + cn_voice), CN) == []


@pytest.mark.parametrize("rule, params", [
    ("daily_call_cap", {"purposes": ["collection", "transactional"]}),
    ("seven_in_seven", {"purposes": ["transactional"]}),
    ("recent_conversation", {"purposes": ["collection", "transactional"]}),
    ("first_contact_sms", {"purposes": ["transactional"]})])
def test_no_pack_may_count_transactional_contacts(rule: str, params: dict) -> None:
    with pytest.raises(PackError, match="purposes must be among"):
        parse_pack({"pack": "x", "version": 1, "retention_years": 1,
                    "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours"}, {"rule": rule, "params": params}]})


def test_a_pack_may_hold_transactional_texts_under_a_dispute_or_ask_for_the_notice() -> None:
    pack = parse_pack({"pack": "strict", "version": 1, "retention_years": 1, "sms_opt_out_notice": "Reply STOP",
                       "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours"},
                                 {"rule": "dispute_hold", "params": {"purposes": ["collection", "transactional"]}},
                                 {"rule": "sms_opt_out_notice", "params": {"purposes": ["transactional"]}}]})
    assert reasons(us(US_NOON, purpose="transactional", dispute_open=True, text="pay here"), pack) == [
        "DISPUTE_OPEN", "MISSING_OPT_OUT_NOTICE"]
    assert reasons(us(US_NOON, purpose="transactional", dispute_open=True, text="pay here"), US) == []


# --- live reservations: a transactional text takes no counter -------------------------------------------------
def test_live_transactional_reservations_leave_the_reminder_cap_alone(redis_client: redis.Redis) -> None:
    gate = LiveGate(redis_client, "cn", MemoryAuditSink())
    links = [gate.reserve(cn(CN_NOON, purpose="transactional")) for _ in range(5)]
    assert all(r.allowed for r in links)
    reminders = [gate.reserve(cn(CN_NOON, purpose="reminder")) for _ in range(3)]
    assert [r.allowed for r in reminders] == [True, True, False]  # the cap of 2 counts reminders only
    assert reminders[2].decision.reasons == (codes.REMINDER_CAP,)
    assert gate.reserve(cn(CN_NOON, purpose="transactional")).allowed  # the full cap does not hold a link
    assert redis_client.zcard("duebot:gate:{S-1}:reminder_cap") == 2  # the links are in no counter
