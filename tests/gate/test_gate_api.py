"""Cross-cutting behaviour of the engine: parsing, fail-closed paths, packs, timezones."""

from __future__ import annotations

from pathlib import Path

import pytest

from duebot.policies import codes
from duebot.policies.gate import RequestError, decide, parse_request
from duebot.policies.packs import PackError, load_pack, parse_pack
from duebot.policies.rules import REGISTRY, Rule, register

from .conftest import DROP, entry, request

NOON = "2026-11-24T20:00:00Z"


@pytest.mark.parametrize("to", ["hello", "+1 555", "", "+99912345", "+1415555010000000", "not-a-number"])
def test_numbers_that_are_not_numbers(to: str) -> None:
    d = decide(request(NOON, to=to), "us").to_json()
    assert d["allowed"] is False and "INVALID_NUMBER" in d["reasons"] and d["next_allowed_at"] is None


def test_unknown_timezone() -> None:
    # Inmarsat numbers are valid but have no zone.
    d = decide(request(NOON, to="+870773112345", timezone=DROP), "us").to_json()
    assert d["reasons"] == ["UNKNOWN_TIMEZONE"] and d["next_allowed_at"] is None
    d = decide(request(NOON, timezone="Mars/Olympus_Mons"), "us").to_json()
    assert d["reasons"] == ["UNKNOWN_TIMEZONE"]
    # An invalid number with a known record zone: the time rules still run.
    d = decide(request("2026-11-24T06:00:00Z", to="bogus"), "us").to_json()
    assert d["reasons"] == ["INVALID_NUMBER", "QUIET_HOURS"]


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.pop("now"), "now"),
    (lambda r: r.update(now="2026-11-24T13:05:00"), "now"),           # no offset
    (lambda r: r.update(now="yesterday"), "now"),
    (lambda r: r.pop("contact"), "contact"),
    (lambda r: r["contact"].update(channel="fax"), "contact.channel"),
    (lambda r: r["contact"].pop("purpose"), "contact.purpose"),
    (lambda r: r["contact"].update(to=14155550100), "contact.to"),
    (lambda r: r["contact"].update(ai_voice="yes"), "contact.ai_voice"),
    (lambda r: r["subscriber"].pop("id"), "subscriber.id"),
    (lambda r: r["subscriber"].pop("opted_out"), "subscriber.opted_out"),
    (lambda r: r["subscriber"].update(dispute_open=None), "subscriber.dispute_open"),
    (lambda r: r["subscriber"].update(line_type="satellite"), "subscriber.line_type"),
    (lambda r: r["subscriber"].update(consent=["sms"]), "subscriber.consent"),
    (lambda r: r["subscriber"]["consent"].update(sms="true"), "subscriber.consent.sms"),
    (lambda r: r.update(history={"at": NOON}), "history"),
    (lambda r: r.update(history=[entry(NOON), "call"]), "history[1]"),
    (lambda r: r.update(history=[{"channel": "voice"}]), "history[0].at"),
    (lambda r: r.update(history=[entry("2026-13-01T00:00:00Z")]), "history[0].at"),
    (lambda r: r.update(history=[entry(NOON, channel="pigeon")]), "history[0].channel"),
    (lambda r: r.update(history=[entry(NOON, outcome="maybe")]), "history[0].outcome"),
])
def test_invalid_requests_name_the_field_and_fail_closed(mutate, field: str) -> None:
    req = request(NOON)
    mutate(req)
    with pytest.raises(RequestError) as err:
        parse_request(req)
    assert err.value.field == field
    d = decide(req, "us")
    assert d.allowed is False and d.reasons == (codes.INVALID_REQUEST,) and field in (d.error or "")


def test_absent_optional_fields() -> None:
    req = request(NOON, timezone=DROP, line_type=DROP, consent=DROP, history=DROP, debt_id=DROP, ai_voice=False)
    assert set(req["subscriber"]) == {"id", "opted_out", "dispute_open"}
    assert decide(req, "us").to_json()["allowed"] is True
    assert decide([1, 2], "us").reasons == (codes.INVALID_REQUEST,)  # not even an object


def test_unknown_pack_fails_closed(tmp_path: Path) -> None:
    assert decide(request(NOON), "zz").reasons == (codes.UNKNOWN_PACK,)
    assert decide(request(NOON), str(tmp_path / "missing.yml")).reasons == (codes.UNKNOWN_PACK,)
    bad = tmp_path / "bad.yml"
    bad.write_text("pack: x\nversion: 1\nretention_years: 2\nrules: [{rule: teleport}]\n")
    assert decide(request(NOON), str(bad)).reasons == (codes.UNKNOWN_PACK,)


@pytest.mark.parametrize("doc, message", [
    ({"pack": "x", "version": 1, "retention_years": 2, "rules": [{"rule": "opt_out"}]}, "quiet_hours"),
    ({"pack": "x", "version": 0, "retention_years": 2, "rules": []}, "version"),
    ({"pack": "x", "version": 1, "rules": [{"rule": "opt_out"}]}, "retention_years"),
    ({"pack": "x", "version": 1, "retention_years": 2,
      "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours", "params": {"start": "22:00", "end": "08:00"}}]},
     "before"),
    ({"pack": "x", "version": 1, "retention_years": 2,
      "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours", "params": {"begin": "08:00"}}]}, "begin"),
])
def test_pack_validation(doc: dict, message: str) -> None:
    with pytest.raises(PackError, match=message):
        parse_pack(doc)


def test_operator_pack_file_can_tighten(tmp_path: Path) -> None:
    text = (Path(load_pack("us").source).read_text().replace("version: 1", "version: 7")
            .replace('{start: "08:00", end: "21:00",', '{start: "09:00", end: "20:00",'))
    path = tmp_path / "acme-us.yml"
    path.write_text(text)
    assert 'start: "09:00"' in text
    d = decide(request("2026-11-24T16:30:00Z"), str(path)).to_json()  # 08:30 PST
    assert d["reasons"] == ["QUIET_HOURS"] and d["pack"] == "us@7"
    assert d["next_allowed_at"] == "2026-11-24T17:00:00Z"


class Boom(Rule):
    code = "BOOM"

    def check(self, req, zones, t):
        raise ZeroDivisionError("rule bug")


def test_crashing_rule_blocks_with_rule_error() -> None:
    if "boom_test" not in REGISTRY:
        register("boom_test")(Boom)
    pack = parse_pack({"pack": "t", "version": 1, "retention_years": 1,
                       "rules": [{"rule": "opt_out"}, {"rule": "quiet_hours"}, {"rule": "boom_test"}]})
    d = decide(request(NOON), pack)
    assert d.allowed is False and d.reasons == (codes.RULE_ERROR,) and d.next_allowed_at is None


def test_windows_that_never_overlap_give_null_next() -> None:
    # +1 907 is Anchorage or Adak, one hour apart; an 08:00-09:00 window can never hold in both.
    pack = parse_pack({"pack": "t", "version": 1, "retention_years": 1, "rules": [
        {"rule": "opt_out"}, {"rule": "quiet_hours", "params": {"start": "08:00", "end": "09:00"}}]})
    d = decide(request("2026-11-24T17:30:00Z", to="+19075550123", timezone=DROP), pack)
    assert d.reasons == (codes.QUIET_HOURS,) and d.next_allowed_at is None


def test_reason_codes_are_unique() -> None:
    assert len(set(codes.ALL)) == len(codes.ALL)
    assert {r.code for r in REGISTRY.values() if r.code} <= set(codes.ALL) | {"BOOM"}
