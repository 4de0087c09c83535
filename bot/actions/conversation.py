"""The collection conversation: verify → disclose → settle, with the always-available requests.

Rasa predicts which action answers a message; each action below decides what to say from the account,
the strategy and what the bot's last question expects (`awaiting`). Nothing about the debt is said before
`verified` is true.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rasa_sdk.events import ActionExecuted, SessionStarted

from duebot import clients
from duebot.actions import deescalation, verification
from duebot.actions.parsing import ParsedDate
from duebot.actions.registry import action
from duebot.actions.strategy import segment_rules
from duebot.actions.turn import Turn, evidence, signed_account, store
from duebot.payments.links import make_link
from duebot.payments.notify import text_link
from duebot.policies.packs import script_of
from duebot.settings import load_settings

if TYPE_CHECKING:
    from duebot.channels.sms.sender import SmsSender

# Requests honoured whatever the bot is waiting for.
ALWAYS = {"opt_out", "request_human", "bot_challenge", "help", "goodbye", "ask_who_is_calling", "complain",
          "wrong_number", "third_party", "callback_later"}
# What a new session starts without: a question the last one left open, and whatever only holds for the session
# (the verified identity, a closed conversation). Failed identity checks are not in the conversation at all.
SESSION_ONLY = ("awaiting", "pending", "session_started_metadata", "verified", "ended")


# --- session ---------------------------------------------------------------------------------------------
def _session_start(turn: Turn) -> None:
    """Rasa's session start, plus the account and channel the carrier passed as metadata."""
    metadata = turn.tracker.get_slot("session_started_metadata") or {}
    turn.events.insert(0, SessionStarted())
    for name, value in turn.tracker.slots.items():
        # carry over what the previous session knew, but not what only held for it
        if value is not None and name not in SESSION_ONLY:
            turn.set(name, value)
    if account_id := signed_account(turn.tracker.sender_id, metadata):
        turn.set("account_id", account_id)
    if metadata.get("channel"):
        turn.set("channel", str(metadata["channel"]))
    turn.set("language", turn.language)  # after the carry-over: this session's channel or account decides
    turn.events.append(ActionExecuted("action_listen"))


action("action_session_start", unguarded=True)(_session_start)


# --- helpers ---------------------------------------------------------------------------------------------
def _record(turn: Turn, kind: str, **detail: Any) -> None:
    """Every outcome goes to the account store (for agents and KPIs) and to the evidence log (for QA)."""
    account_id = turn.account.id if turn.account else None
    values = {k: str(v) for k, v in detail.items()}
    store().add_event(kind, account_id, turn.conversation_id, values)
    if (inbox := evidence()) is not None:
        inbox.submit("outcome", {"type": kind, "account_id": account_id, **values},
                     conversation_id=turn.conversation_id)


def _end(turn: Turn) -> None:
    turn.set("ended", True)
    turn.expect(None)


def _begin_verification(turn: Turn) -> None:
    if turn.account is None:
        turn.say("utter_ask_right_party_generic")
        turn.expect("right_party")
    elif turn.channel == "voice":
        turn.say("utter_ask_right_party")
        turn.expect("right_party")
    else:
        _ask_factor(turn, opening=True)


def _ask_factor(turn: Turn, *, opening: bool = False) -> None:
    """`opening`: the bot's first words on a text channel (it says who it is); otherwise it follows the
    subscriber's answer to "may I speak with ...?" and thanks them."""
    assert turn.account is not None
    if closed_for := _attempts(turn).closed_for(turn.account.id):
        _check_closed(turn, closed_for)
        return
    factor = turn.strategy["verification"]["factor"]
    response = "utter_ask_birth_date" if factor == "birth_date" else "utter_ask_id_last4"
    turn.say(f"{response}_opening" if opening and not turn.bot_has_spoken else response)
    turn.expect("verification")


def _attempts(turn: Turn) -> verification.Attempts:
    return verification.attempts(int(turn.strategy["verification"]["max_attempts"]),
                                 load_settings().verification.cooldown)


def _wait(turn: Turn, seconds: int) -> str:
    return verification.wait_text(turn.locale.data["minutes"], seconds)


def _check_closed(turn: Turn, seconds: int) -> None:
    """Too many failed checks on this account, from any conversation: nothing is compared until the cool-down
    ends; a person is offered meanwhile."""
    turn.say("utter_verification_closed", wait=_wait(turn, seconds))
    turn.expect("offer_human", {})


def _require_verified(turn: Turn) -> bool:
    if turn.verified and turn.account is not None:
        return True
    turn.say("utter_verify_first")
    _begin_verification(turn)
    return False


def _rules(turn: Turn) -> dict[str, Any]:
    assert turn.account is not None
    return segment_rules(turn.strategy, turn.account.segment)


def _needs_review(turn: Turn) -> bool:
    assert turn.account is not None
    return turn.account.amount_due > Decimal(str(turn.strategy["human_review_amount"])) or bool(
        _rules(turn).get("human_review"))


def _plan_eligible(turn: Turn) -> bool:
    return bool(_rules(turn).get("installments"))


def _schedule(turn: Turn) -> list[dict[str, str]]:
    assert turn.account is not None
    parts = int(turn.strategy["installments"]["parts"])
    every = int(turn.strategy["installments"]["interval_days"])
    total = turn.account.amount_due
    share = (total / parts).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    first = total - share * (parts - 1)  # the cents that do not divide go in the first payment
    return [{"due_date": (turn.today + dt.timedelta(days=every * i)).isoformat(),
             "amount": str(first if i == 0 else share)} for i in range(parts)]


def _say_schedule(turn: Turn, schedule: list[dict[str, str]]) -> str:
    return turn.locale.schedule((dt.date.fromisoformat(p["due_date"]), turn.money(Decimal(p["amount"])))
                                for p in schedule)


def _check_date(turn: Turn, parsed: ParsedDate) -> dt.date | None:
    """Say what is wrong with a promised date, or return it."""
    assert turn.account is not None
    if parsed.ambiguous:
        a, b = parsed.ambiguous
        turn.say("utter_date_ambiguous", option_a=turn.day(a), option_b=turn.day(b))
        return None
    if parsed.date is None:
        turn.say("utter_date_not_understood")
        return None
    if parsed.past:
        turn.say("utter_date_past")
        return None
    horizon = int(turn.strategy["promise_horizon_days"].get(turn.account.pack, 30))
    latest = turn.today + dt.timedelta(days=horizon)
    if parsed.date > latest:
        turn.say("utter_date_too_far", latest=turn.day(latest))
        return None
    return parsed.date


@lru_cache(maxsize=1)
def link_sender() -> SmsSender | None:
    """The action server's outbound SMS sender (duebot/clients.py), or None when no SMS carrier is configured."""
    return clients.sms_sender(store=store())


def _send_link(turn: Turn, amount: Decimal, *, announce: bool = True) -> bool:
    """Text a signed payment link for `amount` to the account's own number (a `transactional` text, on every
    channel) and record what happened; `announce`: say it was sent, or that it could not be. True when sent."""
    assert turn.account is not None
    ttl_hours = int(turn.strategy["payment_link"]["ttl_hours"])
    url = make_link(turn.account.id, amount, ttl_hours).url(load_settings().payment_link_base_url)
    delivery = text_link(link_sender(), turn.account.id, url, ttl_hours, turn.language, turn.conversation_id,
                         unconfigured=clients.sms_configured() or "")
    _record(turn, "payment_link", amount=amount, url=url, to=turn.account.phone, **delivery.detail())
    if announce and delivery.sent:
        turn.say("utter_payment_link_sent", amount=turn.money(amount), phone_last4=turn.account.phone[-4:],
                 ttl_hours=ttl_hours)
    elif announce:
        turn.say("utter_payment_link_failed")
    return delivery.sent


def _offer_options(turn: Turn) -> None:
    turn.say("utter_offer_options", plan_option=turn.locale.plan_option if _plan_eligible(turn) else "")
    turn.expect("settle", {})


# --- verification and disclosure -------------------------------------------------------------------------
def _verify(turn: Turn) -> None:
    """Compare the subscriber's answer, once the account's counter (Redis, bot/actions/verification.py) has
    admitted the attempt: the count survives anything that resets the conversation."""
    assert turn.account is not None
    counter = _attempts(turn)
    attempt = counter.take(turn.account.id)
    if not attempt.admitted:
        _record(turn, "verification_failed", reason="check_closed", retry_after=attempt.retry_after)
        _check_closed(turn, attempt.retry_after)
        return
    factor = turn.strategy["verification"]["factor"]
    if factor == "birth_date":
        given = turn.parse_date(future=False).date
        ok = given is not None and given == turn.account.birth_date
    else:
        expected = (turn.account.id_last4 or "").upper()
        ok = bool(expected) and turn.parse_id_characters()[-4:] == expected
    if ok:
        counter.succeeded(turn.account.id)
        turn.set("verified", True)
        _record(turn, "identity_verified", factor=factor)
        _disclose(turn)
        return
    if attempt.failures >= counter.limit:
        _record(turn, "verification_failed", reason="attempts", attempts=attempt.failures,
                retry_after=attempt.retry_after)
        turn.say("utter_verification_failed", wait=_wait(turn, attempt.retry_after))
        turn.expect("offer_human", {})
    else:
        turn.say("utter_verification_retry")
        turn.expect("verification")


def _disclose(turn: Turn) -> None:
    assert turn.account is not None
    notice = turn.locale.strategy_value(turn.strategy, "collector_notice").get(turn.account.pack, "")
    turn.say("utter_disclosure", collector_notice=notice, amount=turn.money(turn.account.amount_due),
             deadline=turn.day(turn.deadline))
    # the pack names the script elements the evidence assessment expects of this conversation
    _record(turn, "disclosure", amount=turn.account.amount_due, deadline=turn.deadline.isoformat(),
            pack=turn.account.pack)
    if "consequence" in script_of(turn.account.pack):
        turn.say("utter_consequence")
    if turn.days_overdue > int(turn.strategy["legal_track_days"]):
        turn.say("utter_legal_track", legal_days=turn.strategy["legal_track_days"])
        _record(turn, "legal_track", days_overdue=turn.days_overdue)
    _offer_options(turn)


# --- the awaited value, whatever intent NLU saw ----------------------------------------------------------
def _value_present(turn: Turn, awaiting: str) -> bool:
    if awaiting == "verification":
        return bool(turn.parse_digits()) or turn.parse_date(future=False).date is not None
    if awaiting in ("promise_date", "partial_date", "callback_time"):
        parsed = turn.parse_date()
        return parsed.date is not None or parsed.ambiguous is not None
    if awaiting == "partial_amount":
        return turn.parse_amount() is not None
    return awaiting == "dispute_details"


def _handle_value(turn: Turn, awaiting: str) -> None:
    pending = dict(turn.slot("pending") or {})
    if awaiting == "verification":
        _verify(turn)
    elif awaiting == "promise_date":
        _promise(turn)
    elif awaiting == "partial_amount":
        _partial(turn, pending)
    elif awaiting == "partial_date":
        _partial_rest_date(turn, pending)
    elif awaiting == "dispute_details":
        _open_dispute(turn, pending.get("reason", "unrecognised_charges"), turn.text)
    elif awaiting == "callback_time":
        _callback(turn)


def routed(handler: Any) -> Any:
    """Common entry for every conversation action: the conduct guard first (crisis, bereavement, legal threats,
    distress, anger: bot/actions/deescalation.py), then closed conversations, awaited values, the action itself.
    The registry refuses an action that does not come through here (bot/actions/registry.py)."""

    def run(turn: Turn) -> None:
        awaiting = turn.awaiting
        answers_question = bool(awaiting and turn.intent not in ALWAYS and _value_present(turn, awaiting))

        def answer() -> None:
            if turn.slot("ended") and turn.intent != "opt_out":
                turn.say("utter_conversation_closed")
            elif answers_question:
                _handle_value(turn, awaiting)
            else:
                handler(turn)

        deescalation.guard(turn, answer, serving=answers_question, record=_record, handoff=_handoff)

    run.guarded = True  # type: ignore[attr-defined]
    return run


# --- actions ---------------------------------------------------------------------------------------------
@action("action_not_understood")
@routed
def not_understood(turn: Turn) -> None:
    turn.say("utter_default")


@action("action_start_conversation")
@routed
def start_conversation(turn: Turn) -> None:
    if turn.verified and turn.account is not None:
        _offer_options(turn)
    else:
        _begin_verification(turn)


@action("action_handle_affirm")
@routed
def handle_affirm(turn: Turn) -> None:
    awaiting, pending = turn.awaiting, dict(turn.slot("pending") or {})
    if awaiting == "right_party":
        if turn.account is None:
            turn.say("utter_handoff")
            _record(turn, "handoff", reason="no_account")
            _end(turn)
        else:
            _ask_factor(turn)
    elif awaiting == "confirm" and pending:
        _commit(turn, pending)
    elif awaiting == "hardship_choice":
        _offer_plan(turn)
    elif awaiting == "offer_human":
        _handoff(turn, "requested_after_offer")
    elif _require_verified(turn):
        _offer_options(turn)


@action("action_handle_deny")
@routed
def handle_deny(turn: Turn) -> None:
    awaiting = turn.awaiting
    if awaiting == "right_party":
        _third_party(turn)
    elif awaiting == "confirm":
        turn.say("utter_ask_again")
        turn.expect("settle", {})
    elif awaiting in ("hardship_choice", "offer_human"):
        if turn.verified:
            _offer_options(turn)
        else:
            turn.say("utter_goodbye")
            turn.expect(None)
    elif _require_verified(turn):
        _offer_options(turn)


@action("action_handle_inform")
@routed
def handle_inform(turn: Turn) -> None:
    awaiting = turn.awaiting
    if awaiting == "right_party" and turn.account is not None:
        _ask_factor(turn)  # "this is John speaking"
    elif not turn.verified and turn.parse_digits() and turn.account is not None:
        _verify(turn)
    elif turn.verified and turn.parse_date().date and awaiting == "settle":
        _promise(turn)
    else:
        turn.say("utter_default")


@action("action_who_is_calling")
@routed
def who_is_calling(turn: Turn) -> None:
    if turn.verified and turn.account is not None:
        turn.say("utter_amount", amount=turn.money(turn.account.amount_due), deadline=turn.day(turn.deadline))
    else:
        turn.say("utter_who_is_calling_unverified")


@action("action_ask_amount")
@routed
def ask_amount(turn: Turn) -> None:
    if _require_verified(turn):
        assert turn.account is not None
        turn.say("utter_amount", amount=turn.money(turn.account.amount_due), deadline=turn.day(turn.deadline))


@action("action_wrong_number")
@routed
def wrong_number(turn: Turn) -> None:
    if turn.account is not None:
        store().mark_wrong_number(turn.account.id)
    _record(turn, "wrong_number")
    turn.say("utter_wrong_number")
    turn.set("outcome", "wrong_number")
    _end(turn)


def _third_party(turn: Turn) -> None:
    _record(turn, "third_party")
    turn.say("utter_third_party")
    turn.set("outcome", "third_party")
    _end(turn)


action("action_third_party")(routed(_third_party))


@action("action_pay_now")
@routed
def pay_now(turn: Turn) -> None:
    if _require_verified(turn):
        assert turn.account is not None
        if _send_link(turn, turn.account.amount_due):
            turn.set("outcome", "pay_now")  # a link that never left is no pay-now outcome
        turn.expect(None)


@action("action_promise_to_pay")
@routed
def promise_to_pay(turn: Turn) -> None:
    if _require_verified(turn):
        _promise(turn)


def _promise(turn: Turn) -> None:
    assert turn.account is not None
    parsed = turn.parse_date()
    if parsed.date is None and parsed.ambiguous is None and turn.awaiting != "promise_date":
        turn.say("utter_ask_promise_date", amount=turn.money(turn.account.amount_due))
        turn.expect("promise_date", {"type": "promise"})
        return
    date = _check_date(turn, parsed)
    if date is None:
        turn.expect("promise_date", {"type": "promise"})
        return
    amount = turn.account.amount_due
    turn.say("utter_confirm_promise", amount=turn.money(amount), date=turn.day(date))
    turn.expect("confirm", {"type": "promise", "amount": str(amount), "date": date.isoformat()})


@action("action_request_installments")
@routed
def request_installments(turn: Turn) -> None:
    if _require_verified(turn):
        _offer_plan(turn)


def _offer_plan(turn: Turn) -> None:
    assert turn.account is not None
    if not _plan_eligible(turn):
        turn.say("utter_plan_not_eligible")
        turn.expect("settle", {})
        return
    schedule = _schedule(turn)
    turn.say("utter_offer_plan", amount=turn.money(turn.account.amount_due), schedule=_say_schedule(turn, schedule))
    turn.expect("confirm", {"type": "plan", "schedule": schedule})


@action("action_partial_payment")
@routed
def partial_payment(turn: Turn) -> None:
    if _require_verified(turn):
        _partial(turn, {})


def _partial(turn: Turn, pending: dict[str, Any]) -> None:
    assert turn.account is not None
    part = turn.parse_amount()
    if part is None or part <= 0:
        turn.say("utter_ask_partial_amount" if turn.awaiting != "partial_amount" else "utter_amount_not_understood")
        turn.expect("partial_amount", {"type": "partial"})
        return
    if part >= turn.account.amount_due:
        turn.say("utter_partial_too_much", amount=turn.money(turn.account.amount_due))
        _send_link(turn, turn.account.amount_due)  # says whether the link went out
        turn.set("outcome", "pay_now")
        turn.expect(None)
        return
    pending = {"type": "partial", "part": str(part)}
    if turn.parse_date().date is not None:
        _partial_rest_date(turn, pending)
        return
    turn.say("utter_ask_partial_rest_date", rest=turn.money(turn.account.amount_due - part))
    turn.expect("partial_date", pending)


def _partial_rest_date(turn: Turn, pending: dict[str, Any]) -> None:
    assert turn.account is not None
    date = _check_date(turn, turn.parse_date())
    if date is None:
        turn.expect("partial_date", pending)
        return
    part = Decimal(pending["part"])
    rest = turn.account.amount_due - part
    turn.say("utter_confirm_partial", part=turn.money(part), rest=turn.money(rest), date=turn.day(date))
    turn.expect("confirm", {**pending, "rest": str(rest), "date": date.isoformat()})


def _commit(turn: Turn, pending: dict[str, Any]) -> None:
    """The subscriber confirmed a proposal read back to them: write it down."""
    assert turn.account is not None
    review = _needs_review(turn)
    kind = pending["type"]
    _record(turn, kind, needs_review=review, **{k: v for k, v in pending.items() if k != "type"})
    if kind == "promise":
        date = dt.date.fromisoformat(pending["date"])
        store().add_promise(turn.account.id, Decimal(pending["amount"]), date, turn.conversation_id,
                            needs_review=review)
        turn.say("utter_promise_recorded", amount=turn.money(Decimal(pending["amount"])), date=turn.day(date))
    elif kind == "plan":
        store().add_plan(turn.account.id, pending["schedule"], turn.conversation_id, needs_review=review)
        turn.say("utter_plan_recorded", schedule=_say_schedule(turn, pending["schedule"]))
    elif kind == "partial":
        date = dt.date.fromisoformat(pending["date"])
        sent = _send_link(turn, Decimal(pending["part"]), announce=False)
        store().add_promise(turn.account.id, Decimal(pending["rest"]), date, turn.conversation_id,
                            kind="partial_rest", needs_review=review)
        said = {"part": turn.money(Decimal(pending["part"])), "rest": turn.money(Decimal(pending["rest"])),
                "date": turn.day(date)}
        if sent:
            turn.say("utter_partial_recorded", **said)
        else:
            turn.say("utter_partial_link_failed", **said)
    if review:
        store().set_status(turn.account.id, "human_review")
        _record(turn, "human_review", reason="amount_or_segment", outcome=kind)
        turn.say("utter_review_note")
    turn.set("outcome", kind)
    turn.expect(None)


DISPUTE_REASONS = {
    "fraud": ("fraud", "stolen", "identity theft", "hacked", "not my account"),
    "service_problem": ("service", "no signal", "outage", "didn't work", "did not work", "broken"),
    "wrong_amount": ("wrong amount", "too high", "overcharged", "charged twice", "double"),
    "unrecognised_charges": ("recognise", "recognize", "168", "never used", "never made", "don't know"),
}


def _dispute_reason(turn: Turn, text: str) -> str:
    lowered = text.lower()
    extra = turn.locale.dispute_words()  # the conversation language's own words (bot/locales/)
    for reason, words in DISPUTE_REASONS.items():
        if any(word in lowered for word in (*words, *extra.get(reason, ()))):
            return reason
    return "unrecognised_charges"


@action("action_dispute")
@routed
def dispute(turn: Turn) -> None:
    if _require_verified(turn):
        turn.say("utter_ask_dispute_details")
        turn.expect("dispute_details", {"type": "dispute", "reason": _dispute_reason(turn, turn.text)})


def _open_dispute(turn: Turn, reason: str, details: str) -> None:
    assert turn.account is not None
    reason = _dispute_reason(turn, details) if reason == "unrecognised_charges" else reason
    case = store().open_dispute(turn.account.id, reason, details, turn.conversation_id)
    _record(turn, "dispute", case_number=case.case_number, reason=reason, details=details)
    turn.say("utter_already_paid" if reason == "already_paid" else "utter_dispute_opened",
             case_number=case.case_number)
    turn.set("outcome", "dispute")
    turn.expect(None)


@action("action_already_paid")
@routed
def already_paid(turn: Turn) -> None:
    if _require_verified(turn):
        _open_dispute(turn, "already_paid", turn.text)


@action("action_hardship")
@routed
def hardship(turn: Turn) -> None:
    _record(turn, "hardship", text=turn.text)
    if turn.verified and turn.account is not None and _plan_eligible(turn):
        turn.say("utter_hardship")
        turn.expect("hardship_choice", {})
    else:
        turn.say("utter_hardship_no_plan")
        turn.expect("offer_human", {})


def _handoff(turn: Turn, reason: str, *, announce: bool = True) -> None:
    """`announce`: say utter_handoff; the guard's crisis and legal replies say it in their own words."""
    summary = {"reason": reason, "verified": turn.verified, "outcome": turn.slot("outcome"),
               "last_message": turn.text}
    _record(turn, "handoff", **summary)
    if announce:
        turn.say("utter_handoff")
    turn.set("handoff_requested", True)
    turn.expect(None)


@action("action_request_human")
@routed
def request_human(turn: Turn) -> None:
    _handoff(turn, "requested")


@action("action_opt_out")
@routed
def opt_out(turn: Turn) -> None:
    """Honoured at once, verified or not: the number is held on every channel (the gate reads this)."""
    if turn.account is not None:
        store().set_opt_out(turn.account.phone, True, turn.channel, f"conversation {turn.conversation_id}")
    _record(turn, "opt_out", channel=turn.channel, text=turn.text)
    turn.say("utter_opt_out_confirmed")
    turn.set("opted_out", True)
    turn.set("outcome", turn.slot("outcome") or "opt_out")
    turn.expect(None)


@action("action_callback_later")
@routed
def callback_later(turn: Turn) -> None:
    _callback(turn)


def _callback(turn: Turn) -> None:
    parsed = turn.parse_date()
    if parsed.date is None:
        turn.say("utter_ask_callback_time")
        turn.expect("callback_time", {})
        return
    _record(turn, "callback", date=parsed.date.isoformat())
    turn.say("utter_callback_recorded", date=turn.day(parsed.date))
    turn.set("outcome", turn.slot("outcome") or "callback")
    turn.expect(None)


@action("action_complain")
@routed
def complain(turn: Turn) -> None:
    _record(turn, "complaint", text=turn.text)
    turn.say("utter_complaint")
    turn.expect("offer_human", {})


# --- answers that only speak; through the guard all the same (an insult read as "are you a bot?") ---------
@action("action_bot_challenge")
@routed
def bot_challenge(turn: Turn) -> None:
    turn.say("utter_iamabot")


@action("action_help")
@routed
def help_(turn: Turn) -> None:
    turn.say("utter_help" if turn.verified else "utter_help_unverified")


@action("action_goodbye")
@routed
def goodbye(turn: Turn) -> None:
    turn.say("utter_goodbye")

