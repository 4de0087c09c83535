"""The conduct guard's reach and wording, read from the Rasa project itself (issue 21).

Every action in the domain passes the guard; what may be said to someone who has not verified never hints at a
bill, in either language; text channels never hear "I'm calling".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import duebot.actions.conversation  # noqa: F401 - registers the actions
from duebot.actions.registry import HANDLERS, action

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
RULES = yaml.safe_load((ROOT / "bot" / "data" / "rules.yml").read_text(encoding="utf-8"))

# Said (or possibly said) before identity is verified: to whoever picked up the phone or holds it now.
BEFORE_VERIFICATION = [
    "utter_ask_right_party", "utter_ask_right_party_generic", "utter_ask_id_last4", "utter_ask_birth_date",
    "utter_ask_id_last4_opening", "utter_ask_birth_date_opening", "utter_verification_retry",
    "utter_verification_failed", "utter_verification_closed", "utter_wrong_number", "utter_third_party",
    "utter_who_is_calling_unverified", "utter_verify_first", "utter_voicemail", "utter_help_unverified",
    "utter_iamabot", "utter_goodbye", "utter_default", "utter_handoff", "utter_opt_out_confirmed",
    "utter_deescalate_ack", "utter_deescalate_options_unverified", "utter_vulnerability_pause_unverified",
    "utter_collection_paused_unverified", "utter_legal_threat_noted", "utter_crisis_support", "utter_bereavement",
    "utter_hardship_no_plan", "utter_complaint", "utter_conversation_closed"]
BILL_WORDS = re.compile(r"\b(bill|bills|balance|debt|debts|owe|owed|owing|overdue|payment|payments|pay|paid|amount|"
                        r"arrears|collection|collector|money)\b|欠费|缴费|还款|账单|金额|欠款|催收|催缴|话费|缴清|分期|"
                        r"付款|钱", re.IGNORECASE)


def _texts(response: str) -> list[str]:
    return [variation["text"] for variation in DOMAIN["responses"][response]]


@pytest.mark.parametrize("response", BEFORE_VERIFICATION)
def test_nothing_said_before_verification_hints_at_a_bill(response):
    for text in _texts(response):
        assert not BILL_WORDS.search(text), f"{response}: {text}"


def test_the_check_finds_a_hint_when_there_is_one():
    assert BILL_WORDS.search("You can pay later by a date that suits you")
    assert BILL_WORDS.search("您可以约一个方便的日期再还款")


def test_every_response_has_both_languages_and_no_text_channel_hears_im_calling():
    for name, variations in DOMAIN["responses"].items():
        languages = {"zh" if v.get("condition") else "en" for v in variations}
        assert languages == {"en", "zh"}, name
        for variation in variations:
            if name not in ("utter_ask_right_party", "utter_voicemail"):  # voice only
                assert "I'm calling" not in variation["text"] and "calling you" not in variation["text"], name


def test_every_action_in_the_domain_and_the_rules_passes_the_guard():
    domain_actions = set(DOMAIN["actions"]) - {"action_session_start"}
    assert domain_actions <= set(HANDLERS)
    for name in domain_actions:
        assert getattr(HANDLERS[name], "guarded", False), name
    # no rule answers with a bare response: an utterance would skip the guard
    for rule in RULES["rules"]:
        for step in rule["steps"]:
            assert not str(step.get("action", "")).startswith("utter_"), rule["rule"]


def test_the_registry_refuses_an_action_that_skips_the_guard():
    with pytest.raises(ValueError, match="conduct guard"):
        action("action_sneaky")(lambda turn: None)
    assert "action_sneaky" not in HANDLERS
