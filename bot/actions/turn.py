"""What one action sees of the conversation: the account, the slots, the message, today's date."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from duebot import clients
from duebot.accounts.models import Account
from duebot.accounts.store import AccountStore
from duebot.actions import parsing, parsing_zh, verification
from duebot.actions.locale import Locale, load_locale
from duebot.actions.parsing import ParsedDate
from duebot.actions.strategy import load_strategy
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.packs import Profile, profile_of
from duebot.secrets import account_signature_matches
from duebot.settings import LANGUAGES, conversation_language, load_settings
from duebot.zh_text import is_chinese

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def store() -> AccountStore:
    return clients.account_store()


@lru_cache(maxsize=1)
def evidence() -> EvidenceInbox:
    """Outcomes go to the evidence log through Redis (`duebot serve` gives the action server its REDIS_URL)."""
    return clients.evidence_inbox()


def _metadata(tracker: Tracker) -> list[dict[str, Any]]:
    found = [tracker.latest_message.get("metadata") or {}, tracker.get_slot("session_started_metadata") or {}]
    return [m for m in found if isinstance(m, dict)]


def language_from(tracker: Tracker, account: Account | None) -> str:
    """The channel routed this message to the Rasa server of a language and says so in the metadata (its
    decision: the account's language when that model is served); without a channel's word, the account decides."""
    for metadata in _metadata(tracker):
        if metadata.get("language") in LANGUAGES:
            return str(metadata["language"])
    return conversation_language(account.language if account else None)


def signed_account(sender: str, metadata: object) -> str | None:
    """The account a duebot channel named in `metadata`, when it signed it for this conversation; anyone who
    reaches Rasa's REST webhook can write `account_id` into metadata, only a channel holds the key to sign it."""
    if not isinstance(metadata, dict) or not metadata.get("account_id"):
        return None
    account_id = str(metadata["account_id"])
    if account_signature_matches(sender, account_id, str(metadata.get("account_sig") or "")):
        return account_id
    logger.warning("conversation %s: an account id without a valid channel signature was ignored", sender)
    return None


def account_id_from(tracker: Tracker) -> str | None:
    if account_id := tracker.get_slot("account_id"):
        return account_id
    for metadata in (tracker.latest_message.get("metadata"), tracker.get_slot("session_started_metadata")):
        if account_id := signed_account(tracker.sender_id, metadata):
            return account_id
    return None


@dataclass
class Turn:
    dispatcher: CollectingDispatcher
    tracker: Tracker
    account: Account | None
    strategy: dict[str, Any]
    language: str = "en"
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def build(cls, dispatcher: CollectingDispatcher, tracker: Tracker) -> Turn:
        account_id = account_id_from(tracker)
        account = store().get_account(account_id) if account_id else None
        language = language_from(tracker, account)
        turn = cls(dispatcher, tracker, account, load_strategy(), language)
        if account_id and tracker.get_slot("account_id") != account_id:
            turn.set("account_id", account_id)
        if tracker.get_slot("language") != language:
            # Responses pick their variation from this slot. Rasa renders an action's responses before the
            # action's own events apply, so action_session_start sets it before the first answer.
            turn.set("language", language)
        if tracker.get_slot("verified") and verification.lapsed(tracker.events, load_settings().verification.idle):
            # the subscriber came back after the idle time: whoever writes now must verify again, and no question
            # asked of the verified subscriber (a proposal to confirm) is still open
            turn.set("verified", False)
            turn.expect(None)
        return turn

    @property
    def locale(self) -> Locale:
        return load_locale(self.language)

    # --- reading -------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.tracker.latest_message.get("text") or ""

    @property
    def intent(self) -> str:
        return (self.tracker.latest_message.get("intent") or {}).get("name") or ""

    def slot(self, name: str) -> Any:
        for event in reversed(self.events):  # a value set earlier in this same action wins
            if event.get("event") == "slot" and event.get("name") == name:
                return event.get("value")
        return self.tracker.get_slot(name)

    @property
    def conversation_id(self) -> str:
        return self.tracker.sender_id

    @property
    def channel(self) -> str:
        metadata = self.tracker.latest_message.get("metadata") or {}
        return str(metadata.get("channel") or self.tracker.get_slot("channel") or "chat")

    @property
    def today(self) -> dt.date:
        zone = ZoneInfo(self.account.timezone) if self.account and self.account.timezone else dt.UTC
        return dt.datetime.now(zone).date()

    @property
    def verified(self) -> bool:
        return bool(self.slot("verified"))

    @property
    def bot_has_spoken(self) -> bool:
        """Whether the bot said anything in this session before this action (on SMS, the campaign's text)."""
        for event in reversed(self.tracker.events):
            if event.get("event") == "session_started":
                return False
            if event.get("event") == "bot":
                return True
        return False

    @property
    def awaiting(self) -> str | None:
        return self.slot("awaiting")

    # --- what the subscriber said, read in the conversation's language ----------------------------------
    def parse_date(self, *, future: bool = True) -> ParsedDate:
        module = parsing_zh if self.language == "zh" else parsing
        return module.parse_date(self.text, self.today, future=future)

    def parse_amount(self) -> Decimal | None:
        if self.language == "zh":  # "一半" needs the balance
            return parsing_zh.parse_amount(self.text, self.account.amount_due if self.account else None)
        return parsing.parse_amount(self.text)

    def parse_digits(self) -> str:
        return (parsing_zh if self.language == "zh" else parsing).parse_digits(self.text)

    def parse_id_characters(self) -> str:
        """The digits said or typed, with an X that stands on its own where it is written (a Chinese ID's check
        character: 447X, "4 4 7 x"); an x inside a word ("next", "six") is not one."""
        return (parsing_zh if self.language == "zh" else parsing).parse_id_characters(self.text)

    # --- account facts, as the bot says them ------------------------------------------------------------
    @property
    def profile(self) -> Profile:
        """The operator profile of the account's pack (brand, callback number, helpline, how to address)."""
        return profile_of(self.account.pack if self.account else None)

    @property
    def name(self) -> str:
        """How the bot addresses the subscriber: the pack says whole name (cn: 王芳, Wang Fang) or first name (us:
        Jane); a name written in Chinese characters is always said whole."""
        if self.account is None:
            return str(self.locale.data["account_holder"])
        full = " ".join(self.account.name.split())
        if self.profile.address == "full_name" or is_chinese(full):
            return full
        return full.split()[0] if full else str(self.locale.data["account_holder"])

    def money(self, amount: Decimal) -> str:
        return self.locale.money(amount, self.account.currency if self.account else self.profile.currency)

    def day(self, date: dt.date) -> str:
        return self.locale.day(date)

    @property
    def deadline(self) -> dt.date:
        return self.today + dt.timedelta(days=int(self.strategy["deadline_days"]))

    @property
    def days_overdue(self) -> int:
        return (self.today - self.account.due_date).days if self.account else 0

    @property
    def common(self) -> dict[str, str]:
        """Variables every response may use."""
        return {"operator": self.profile.text("brand", self.language),
                "callback_number": self.profile.text("callback_number", self.language),
                "name": self.name}

    # --- writing ------------------------------------------------------------------------------------
    def say(self, response: str, **values: Any) -> None:
        self.dispatcher.utter_message(response=response, **{**self.common, **values})

    def set(self, name: str, value: Any) -> None:
        self.events.append(SlotSet(name, value))

    def expect(self, awaiting: str | None, pending: dict[str, Any] | None = None) -> None:
        self.set("awaiting", awaiting)
        if pending is not None or awaiting is None:
            self.set("pending", pending)
