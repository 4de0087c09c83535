"""Signed payment links and signed payment confirmations.

A link carries an opaque token (account id, amount in cents, expiry), MAC'd with HMAC-SHA256 under the
operator's secret: the payment page can trust the amount without calling back, and nothing personal is in
the URL. The payment provider confirms through a webhook signed with the same kind of MAC over the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from decimal import Decimal

from duebot import secrets


class InvalidLink(ValueError):
    pass


def secret() -> bytes:
    return secrets.key("payment")


def sign(data: bytes, key: bytes | None = None) -> str:
    return hmac.new(key or secret(), data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PaymentLink:
    account_id: str
    amount: Decimal
    expires_at: int

    def url(self, base_url: str, key: bytes | None = None) -> str:
        payload = secrets.b64(json.dumps({"a": self.account_id, "c": int(self.amount * 100), "e": self.expires_at},
                                  separators=(",", ":")).encode())
        return f"{base_url}?t={payload}.{sign(payload.encode(), key)}"


def make_link(account_id: str, amount: Decimal, ttl_hours: int, now: float | None = None) -> PaymentLink:
    return PaymentLink(account_id, amount.quantize(Decimal("0.01")),
                       int((time.time() if now is None else now) + ttl_hours * 3600))


def verify_token(token: str, key: bytes | None = None, now: float | None = None, *,
                 allow_expired: bool = False) -> PaymentLink:
    """The link a token names, when its MAC holds and (unless `allow_expired`: a confirmation of a payment made
    on time but reported late) it has not expired."""
    try:
        payload, mac = token.rsplit(".", 1)
    except ValueError as exc:
        raise InvalidLink("malformed token") from exc
    if not hmac.compare_digest(sign(payload.encode(), key), mac):
        raise InvalidLink("bad signature")
    body = json.loads(secrets.unb64(payload))
    if not allow_expired and body["e"] < (time.time() if now is None else now):
        raise InvalidLink("expired")
    return PaymentLink(body["a"], Decimal(body["c"]) / 100, body["e"])
