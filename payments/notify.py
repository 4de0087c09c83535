"""Texting a payment link to the account's own number, as a `transactional` text through the SMS sender.

What happened is returned, never assumed: the bot says the link was sent only when Twilio accepted the text, and
the `payment_link` outcome records `sent` with the message SID or the reason it was not sent (no SMS carrier
configured, a gate refusal such as QUIET_HOURS or OPTED_OUT, a rate limit, Twilio's error code, an error).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from duebot.channels.language_texts import LanguageTexts

if TYPE_CHECKING:
    from duebot.channels.sms.sender import SmsSender

logger = logging.getLogger(__name__)
TEXTS = LanguageTexts(Path(__file__).resolve().parent / "texts.yml", ("payment_link",))
NO_CARRIER = "NO_SMS_CARRIER"
SEND_ERROR = "SEND_ERROR"


@dataclass(frozen=True)
class Delivery:
    """Whether the link's text left, with Twilio's message SID, or why not."""

    sent: bool
    sid: str | None = None
    reason: str | None = None

    def detail(self) -> dict[str, str]:
        """For the `payment_link` outcome: sent true/false, and the SID or the reason."""
        if self.sent:
            return {"sent": "true", "sid": self.sid or ""}
        return {"sent": "false", "reason": self.reason or SEND_ERROR}


def link_text(language: str, brand: str, url: str, ttl_hours: int) -> str:
    return TEXTS.render("payment_link", language, brand=brand, url=url, ttl_hours=str(ttl_hours))


def text_link(sender: SmsSender | None, account_id: str, url: str, ttl_hours: int, language: str,
              conversation_id: str, *, unconfigured: str = "") -> Delivery:
    """Text `url` to the account's number (purpose `transactional`, in `language`), from `conversation_id`.
    `sender` None: no carrier is configured (`unconfigured` says what is missing, for the log)."""
    if sender is None:
        logger.warning("payment link for account %s NOT texted: %s", account_id,
                       unconfigured or "no SMS carrier configured")
        return Delivery(False, reason=NO_CARRIER)
    body = link_text(language, sender.settings.brand_for(language), url, ttl_hours)
    try:
        result = sender.send(account_id, body, "transactional", conversation_id=conversation_id)
    except Exception:  # noqa: BLE001 - Redis or the network failed: say the link did not go, never that it did
        logger.exception("payment link for account %s NOT texted: the send failed", account_id)
        return Delivery(False, reason=SEND_ERROR)
    if not result.sent:
        reason = ",".join(result.reasons) or SEND_ERROR
        logger.warning("payment link for account %s NOT texted: %s", account_id, reason)
        return Delivery(False, reason=reason)
    return Delivery(True, sid=result.sid)
