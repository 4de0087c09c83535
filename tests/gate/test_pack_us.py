"""us pack (Reg F + TCPA), table-driven at each rule's edges. Subscriber in Los Angeles unless stated."""

from __future__ import annotations

import pytest

from duebot.policies.gate import decide
from duebot.policies.packs import load_pack

from .conftest import DROP, entry, request

US = load_pack("us")


def run(req: dict) -> dict:
    return decide(req, US).to_json()


# ---------------------------------------------------------------- quiet hours (08:00-21:00 local)

@pytest.mark.parametrize("now, tz, allowed, next_at", [
    # PST (UTC-8) on 2026-11-24
    ("2026-11-24T15:59:59Z", "America/Los_Angeles", False, "2026-11-24T16:00:00Z"),  # 07:59:59
    ("2026-11-24T16:00:00Z", "America/Los_Angeles", True, "2026-11-24T16:00:00Z"),   # 08:00:00
    ("2026-11-25T04:59:59Z", "America/Los_Angeles", True, "2026-11-25T04:59:59Z"),   # 20:59:59
    ("2026-11-25T05:00:00Z", "America/Los_Angeles", False, "2026-11-25T16:00:00Z"),  # 21:00:00
    # DST starts 2026-03-08 in New York: 08:00 EDT is 12:00Z (a fixed EST offset would say 07:00)
    ("2026-03-08T11:59:59Z", "America/New_York", False, "2026-03-08T12:00:00Z"),
    ("2026-03-08T12:00:00Z", "America/New_York", True, "2026-03-08T12:00:00Z"),
    ("2026-03-08T00:59:59Z", "America/New_York", True, "2026-03-08T00:59:59Z"),      # Mar 7 19:59:59 EST
    ("2026-03-08T02:00:00Z", "America/New_York", False, "2026-03-08T12:00:00Z"),     # Mar 7 21:00 EST -> 8am EDT
    ("2026-03-09T00:59:59Z", "America/New_York", True, "2026-03-09T00:59:59Z"),      # Mar 8 20:59:59 EDT
    ("2026-03-09T01:00:00Z", "America/New_York", False, "2026-03-09T12:00:00Z"),     # Mar 8 21:00 EDT
    # DST ends 2026-11-01: 08:00 EST is 13:00Z; the night before ends 21:00 EDT = 01:00Z
    ("2026-11-01T12:59:59Z", "America/New_York", False, "2026-11-01T13:00:00Z"),
    ("2026-11-01T13:00:00Z", "America/New_York", True, "2026-11-01T13:00:00Z"),
    ("2026-11-01T00:59:59Z", "America/New_York", True, "2026-11-01T00:59:59Z"),      # Oct 31 20:59:59 EDT
    ("2026-11-01T01:00:00Z", "America/New_York", False, "2026-11-01T13:00:00Z"),     # Oct 31 21:00 EDT
    ("2026-11-02T01:59:59Z", "America/New_York", True, "2026-11-02T01:59:59Z"),      # Nov 1 20:59:59 EST
    ("2026-11-02T02:00:00Z", "America/New_York", False, "2026-11-02T13:00:00Z"),     # Nov 1 21:00 EST
    # Arizona keeps MST all year
    ("2026-07-01T14:59:59Z", "America/Phoenix", False, "2026-07-01T15:00:00Z"),
    ("2026-07-01T15:00:00Z", "America/Phoenix", True, "2026-07-01T15:00:00Z"),
])
def test_quiet_hours_edges(now: str, tz: str, allowed: bool, next_at: str) -> None:
    d = run(request(now, timezone=tz))
    assert d["allowed"] is allowed
    assert d["reasons"] == ([] if allowed else ["QUIET_HOURS"])
    assert d["next_allowed_at"] == next_at
    assert d["pack"] == "us@1"


@pytest.mark.parametrize("channel, purpose", [("sms", "collection"), ("sms", "reply"), ("voice", "reminder")])
def test_quiet_hours_every_channel(channel: str, purpose: str) -> None:
    d = run(request("2026-11-25T05:30:00Z", channel=channel, purpose=purpose))
    assert d["reasons"] == ["QUIET_HOURS"]


def test_zone_from_number_when_record_has_none() -> None:
    # +1 212 is New York: 12:30Z is 07:30 EST -> blocked; Los Angeles record would say 04:30.
    d = run(request("2026-11-24T12:30:00Z", to="+12125550100", timezone=DROP))
    assert d == {"allowed": False, "reasons": ["QUIET_HOURS"], "next_allowed_at": "2026-11-24T13:00:00Z",
                 "pack": "us@1"}
    assert run(request("2026-11-24T13:00:00Z", to="+12125550100", timezone=DROP))["allowed"] is True


def test_record_zone_wins_over_number() -> None:
    # New York number, subscriber moved to Los Angeles: 13:00Z is 05:00 there.
    d = run(request("2026-11-24T13:00:00Z", to="+12125550100", timezone="America/Los_Angeles"))
    assert d["reasons"] == ["QUIET_HOURS"] and d["next_allowed_at"] == "2026-11-24T16:00:00Z"


@pytest.mark.parametrize("now, allowed, next_at", [
    # +1 907 may be Anchorage (AKST, UTC-9) or Adak (HST, UTC-10): allowed only when both are 08:00-21:00.
    ("2026-11-24T17:30:00Z", False, "2026-11-24T18:00:00Z"),  # 08:30 Anchorage, 07:30 Adak
    ("2026-11-24T18:00:00Z", True, "2026-11-24T18:00:00Z"),   # 09:00 / 08:00
    ("2026-11-25T05:59:59Z", True, "2026-11-25T05:59:59Z"),   # 20:59:59 / 19:59:59
    ("2026-11-25T06:00:00Z", False, "2026-11-25T18:00:00Z"),  # 21:00 Anchorage
])
def test_number_spanning_several_zones(now: str, allowed: bool, next_at: str) -> None:
    d = run(request(now, to="+19075550123", timezone=DROP))
    assert (d["allowed"], d["next_allowed_at"]) == (allowed, next_at)


def test_toll_free_number_must_be_allowed_from_guam_to_newfoundland() -> None:
    # +1 800 may be anywhere from Guam (UTC+10) to St John's (UTC-3:30): the only shared window is
    # 22:00Z-00:30Z (08:00 Guam .. 21:00 St John's).
    d = run(request("2026-11-24T18:00:00Z", to="+18005550199", timezone=DROP))
    assert d["reasons"] == ["QUIET_HOURS"] and d["next_allowed_at"] == "2026-11-24T22:00:00Z"
    assert run(request("2026-11-24T22:00:00Z", to="+18005550199", timezone=DROP))["allowed"] is True
    assert run(request("2026-11-25T00:29:59Z", to="+18005550199", timezone=DROP))["allowed"] is True
    assert run(request("2026-11-25T00:30:00Z", to="+18005550199", timezone=DROP))["allowed"] is False


# ---------------------------------------------------------------- 7 calls in 7 days, per debt

NOON = "2026-11-24T20:00:00Z"  # 12:00 PST on Tue 2026-11-24


def calls(n: int, debt: str = "D-1", outcome: str = "no_answer", first_day: int = 18) -> list[dict]:
    return [entry(f"2026-11-{first_day + i:02d}T19:00:00Z", debt_id=debt, outcome=outcome) for i in range(n)]


@pytest.mark.parametrize("history, allowed, reasons, next_at", [
    (calls(6), True, [], NOON),                                            # this is the 7th call
    (calls(7), False, ["SEVEN_IN_SEVEN"], "2026-11-25T19:00:00Z"),         # 8th: wait for the 18th's to age out
    (calls(7, outcome="voicemail"), False, ["SEVEN_IN_SEVEN"], "2026-11-25T19:00:00Z"),
    (calls(7, outcome="failed"), True, [], NOON),                          # never placed
    (calls(7, debt="D-2"), True, [], NOON),                                # another debt
    (calls(6) + calls(1, debt="D-2", first_day=23), True, [], NOON),
    (calls(7, first_day=17), True, [], NOON),                              # 17th is 7 days 1 h ago: out
])
def test_seven_in_seven(history: list, allowed: bool, reasons: list, next_at: str) -> None:
    d = run(request(NOON, history=history))
    assert (d["allowed"], d["reasons"], d["next_allowed_at"]) == (allowed, reasons, next_at)


def test_seven_in_seven_counts_entries_without_debt_and_ignores_sms() -> None:
    history = calls(6) + [entry("2026-11-24T17:00:00Z", debt_id=None)]
    assert run(request(NOON, history=history))["reasons"] == ["SEVEN_IN_SEVEN"]
    history = calls(6) + [entry("2026-11-24T17:00:00Z", channel="sms", outcome="delivered")]
    assert run(request(NOON, history=history))["allowed"] is True
    # SMS are not calls, so the cap does not hold an SMS either.
    assert run(request(NOON, channel="sms", history=calls(7)))["allowed"] is True


def test_seven_in_seven_window_is_also_seven_local_days() -> None:
    # Calls at 23:30 PST on Nov 17 .. Nov 23 (07:30Z next day). At 08:00 PST Nov 24, the 17th's call is
    # 6 d 8.5 h old: inside both readings. The 8th call waits until 168 h after it: Nov 24 23:30 PST, then
    # quiet hours push it to Nov 25 08:00 PST.
    history = [entry(f"2026-11-{18 + i:02d}T07:30:00Z") for i in range(7)]
    d = run(request("2026-11-24T16:00:00Z", history=history))
    assert d["reasons"] == ["SEVEN_IN_SEVEN"]
    assert d["next_allowed_at"] == "2026-11-25T16:00:00Z"


# ---------------------------------------------------------------- recent conversation (day 1 = its day)

CONV = [entry("2026-11-17T18:00:00Z", outcome="conversation")]  # Tue Nov 17 10:00 PST = day 1


@pytest.mark.parametrize("now, allowed, reasons, next_at", [
    ("2026-11-23T20:00:00Z", False, ["RECENT_CONVERSATION"], "2026-11-24T16:00:00Z"),  # day 7 noon
    ("2026-11-24T07:59:59Z", False, ["QUIET_HOURS", "RECENT_CONVERSATION"], "2026-11-24T16:00:00Z"),  # day 7 23:59
    ("2026-11-24T16:00:00Z", True, [], "2026-11-24T16:00:00Z"),                        # day 8 08:00
    ("2026-11-24T20:00:00Z", True, [], "2026-11-24T20:00:00Z"),                        # day 8 noon
    ("2026-11-17T23:00:00Z", False, ["RECENT_CONVERSATION"], "2026-11-24T16:00:00Z"),  # day 1
])
def test_recent_conversation(now: str, allowed: bool, reasons: list, next_at: str) -> None:
    d = run(request(now, history=CONV))
    assert (d["allowed"], d["reasons"], d["next_allowed_at"]) == (allowed, reasons, next_at)


def test_recent_conversation_scope() -> None:
    now = "2026-11-23T20:00:00Z"
    assert run(request(now, history=CONV, debt_id="D-2"))["allowed"] is True            # other debt
    assert run(request(now, history=CONV, channel="sms"))["allowed"] is True             # a text is not a call
    answered = [entry("2026-11-17T18:00:00Z", outcome="answered")]
    assert run(request(now, history=answered))["allowed"] is True                        # not a conversation


# ---------------------------------------------------------------- consent, opt-out, dispute

@pytest.mark.parametrize("line_type, ai_voice, consent, reasons", [
    ("mobile", True, {"ai_voice": False, "sms": True}, ["NO_AI_VOICE_CONSENT"]),
    ("mobile", True, DROP, ["NO_AI_VOICE_CONSENT"]),          # absent consent = no consent
    ("unknown", True, {"sms": True}, ["NO_AI_VOICE_CONSENT"]),
    (DROP, True, {"sms": True}, ["NO_AI_VOICE_CONSENT"]),      # absent line type = unknown
    (DROP, DROP, {"sms": True}, ["NO_AI_VOICE_CONSENT"]),      # absent ai_voice = duebot's synthetic voice
    ("landline", True, {"sms": True}, []),
    ("mobile", False, {"sms": True}, []),                      # a human agent's call
    ("mobile", True, {"ai_voice": True}, []),
])
def test_ai_voice_consent(line_type: object, ai_voice: object, consent: object, reasons: list) -> None:
    req = request(NOON, line_type=line_type, ai_voice=ai_voice, consent=consent)
    assert ("consent" in req["subscriber"]) is (consent is not DROP)
    assert run(req)["reasons"] == reasons


@pytest.mark.parametrize("consent, purpose, text, reasons", [
    ({"sms": False}, "collection", DROP, ["NO_SMS_CONSENT"]),
    ({}, "reminder", DROP, ["NO_SMS_CONSENT"]),
    ({"sms": False}, "reply", DROP, []),                      # one-off answer to the subscriber's own text
    ({"sms": True}, "collection", DROP, []),                  # sender appends the pack's notice
    ({"sms": True}, "collection", "Your bill is due. Reply STOP to opt out.", []),
    ({"sms": True}, "collection", "Your bill is due. reply stop to opt out.", []),
    ({"sms": True}, "collection", "Your bill is due.", ["MISSING_OPT_OUT_NOTICE"]),
])
def test_sms_consent_and_notice(consent: dict, purpose: str, text: object, reasons: list) -> None:
    assert run(request(NOON, channel="sms", purpose=purpose, consent=consent, text=text))["reasons"] == reasons


@pytest.mark.parametrize("channel", ["voice", "sms"])
@pytest.mark.parametrize("purpose", ["collection", "reminder", "reply"])
def test_opt_out_holds_every_channel_and_purpose(channel: str, purpose: str) -> None:
    d = run(request(NOON, channel=channel, purpose=purpose, opted_out=True))
    assert d["allowed"] is False and d["reasons"] == ["OPTED_OUT"] and d["next_allowed_at"] is None


@pytest.mark.parametrize("channel", ["voice", "sms"])
@pytest.mark.parametrize("purpose, held", [("collection", True), ("reminder", True), ("reply", False)])
def test_dispute_holds_collection_on_every_channel(channel: str, purpose: str, held: bool) -> None:
    d = run(request(NOON, channel=channel, purpose=purpose, dispute_open=True))
    assert d["reasons"] == (["DISPUTE_OPEN"] if held else [])
    assert d["next_allowed_at"] == (None if held else NOON)


def test_every_blocking_rule_is_listed_and_non_time_rule_nulls_next() -> None:
    conversation = [entry("2026-11-22T18:00:00Z", outcome="conversation")]
    d = run(request("2026-11-25T06:00:00Z", opted_out=True, dispute_open=True, history=calls(7) + conversation,
                    consent={"sms": True}))
    assert d["reasons"] == ["OPTED_OUT", "QUIET_HOURS", "DISPUTE_OPEN", "SEVEN_IN_SEVEN",
                            "RECENT_CONVERSATION", "NO_AI_VOICE_CONSENT"]
    assert d["next_allowed_at"] is None


def test_time_rules_combine_into_one_next_instant() -> None:
    # Quiet at 21:30 PST, 7 calls in the window and a conversation: next is when all three lift together.
    history = calls(7, first_day=18) + [entry("2026-11-20T18:00:00Z", outcome="conversation", debt_id="D-1")]
    d = run(request("2026-11-25T05:30:00Z", history=history))
    assert d["reasons"] == ["QUIET_HOURS", "SEVEN_IN_SEVEN", "RECENT_CONVERSATION"]
    # conversation Fri Nov 20 -> calls resume Fri Nov 27 00:00 PST -> 08:00 PST = 16:00Z
    assert d["next_allowed_at"] == "2026-11-27T16:00:00Z"


def test_pack_data() -> None:
    assert US.id == "us@1" and US.retention_years == 3
    assert {k.lower() for k in US.opt_out_keywords} >= {"stop", "quit", "end", "revoke", "opt out", "cancel",
                                                         "unsubscribe"}
    assert "STOP" in (US.sms_opt_out_notice or "")
