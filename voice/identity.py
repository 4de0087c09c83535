"""Who a call is with, as the rest of duebot sees it: an opaque conversation id, never the caller's number.

The conversation id of a call is its Rasa sender id and the evidence log's conversation id: it is written into
every record's leaf and into meta.idx, which retention erasure cannot rewrite. So it must not be, or contain, the
phone number. `conversation_id_for(number)` is an HMAC of the number under the `voice` secret (duebot/secrets.py):
stable (the same caller's calls share one conversation, as the raw number did) and opaque. It is written in the
letters a-p only, so it holds no digit at all, let alone one of the number's.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from duebot.secrets import key

PREFIX = "voice-"
_LETTERS = "abcdefghijklmnop"  # one per nibble: no digit can appear in an id
_DIALABLE = re.compile(r"^(?:(?:tel|sips?):)?\+?[\d\s().\-/]+(?:@.*)?$", re.IGNORECASE)


def looks_like_a_number(sender: str) -> bool:
    """A phone number in any usual spelling (E.164, national, tel:/sip: URI), i.e. what must not be an id."""
    return bool(_DIALABLE.match(sender.strip())) and sum(ch.isdigit() for ch in sender.split("@")[0]) >= 5


def _canonical(number: str) -> str:
    """The number's digits: `+1 (555) 123-0000`, `tel:+15551230000`, `15551230000` and `+15551230000` agree."""
    return "".join(ch for ch in number.strip().split("@")[0] if ch.isdigit())


def conversation_id_for(caller: str, secret_key: bytes | None = None) -> str:
    """The opaque, stable conversation id of the calls with `caller` (a number, or a SIP user)."""
    material = _canonical(caller) if looks_like_a_number(caller) else caller.strip()
    digest = hmac.new(secret_key if secret_key is not None else key("voice"),
                      b"voice-conversation." + material.encode(), hashlib.sha256).digest()[:16]
    return PREFIX + "".join(_LETTERS[b >> 4] + _LETTERS[b & 15] for b in digest)


def opaque_sender(sender: str | None, secret_key: bytes | None = None) -> str | None:
    """`sender` unless it is a phone number, which becomes its conversation id (a carrier that passes the caller's
    number as the sender, as SIP does, still never names a conversation by it)."""
    if sender and looks_like_a_number(sender):
        return conversation_id_for(sender, secret_key)
    return sender
