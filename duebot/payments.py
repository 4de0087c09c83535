"""Signed payment links and signed payment confirmations.

A link carries an opaque token (account id, amount in cents, expiry), MAC'd with HMAC-SHA256 under the
operator's secret: the payment page can trust the amount without calling back, and nothing personal is in
the URL. The payment provider confirms through a webhook signed with the same kind of MAC over the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from decimal import Decimal


class InvalidLink(ValueError):
    pass


def secret() -> bytes:
    value = os.environ.get("DUEBOT_PAYMENT_SECRET")
    if not value:
        # A development default keeps the embedded demo working; production must set its own.
        value = "duebot-development-payment-secret"
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(data: bytes, key: bytes | None = None) -> str:
    return hmac.new(key or secret(), data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PaymentLink:
    account_id: str
    amount: Decimal
    expires_at: int

    def url(self, base_url: str, key: bytes | None = None) -> str:
        payload = _b64(json.dumps({"a": self.account_id, "c": int(self.amount * 100), "e": self.expires_at},
                                  separators=(",", ":")).encode())
        return f"{base_url}?t={payload}.{sign(payload.encode(), key)}"


def make_link(account_id: str, amount: Decimal, ttl_hours: int, now: float | None = None) -> PaymentLink:
    return PaymentLink(account_id, amount.quantize(Decimal("0.01")), int((now or time.time()) + ttl_hours * 3600))


def verify_token(token: str, key: bytes | None = None, now: float | None = None) -> PaymentLink:
    try:
        payload, mac = token.rsplit(".", 1)
    except ValueError as exc:
        raise InvalidLink("malformed token") from exc
    if not hmac.compare_digest(sign(payload.encode(), key), mac):
        raise InvalidLink("bad signature")
    body = json.loads(_unb64(payload))
    if body["e"] < (now or time.time()):
        raise InvalidLink("expired")
    return PaymentLink(body["a"], Decimal(body["c"]) / 100, body["e"])
