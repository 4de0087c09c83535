"""Handing a payment over to the payment provider, and what the provider hands back.

Two steps, both signed with HMAC-SHA256 under the payment secret (payments/links.py `sign`, hex, header
`X-Duebot-Signature`):

1. duebot → provider: `create_checkout` for a verified link: POST `<DUEBOT_PAYMENT_PROVIDER_URL>/checkouts` with
   {"token", "amount", "currency", "webhook_url", "return_url"}; the provider answers {"id", "redirect_url"}, the
   page the subscriber is sent to (303) to pay.
2. provider → duebot: the confirmation `POST /payments/webhook` {"reference", "token", "amount"} (payments/http.py),
   applied once per reference; providers retry until it is acknowledged.

`HttpProvider` speaks this to any provider, or to a gateway in front of one (Alipay, WeChat Pay, UnionPay need
such an adapter: none is shipped); `payments/fake_provider.py` is the local one for tests and the demo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from urllib.parse import urlparse

import httpx

from duebot.payments.links import sign


class ProviderError(RuntimeError):
    """The provider could not be reached or refused the checkout: nothing was charged."""


@dataclass(frozen=True)
class Checkout:
    """What the provider needs to take one payment: the link's token (it comes back in the confirmation), the
    amount the link carries, and where to confirm and to send the subscriber back to."""

    token: str
    amount: Decimal
    currency: str
    webhook_url: str
    return_url: str


class PaymentProvider(Protocol):
    def origin(self) -> str:
        """scheme://host[:port] of the pages the subscriber is sent to (the payment page's form-action)."""
        ...

    def create_checkout(self, checkout: Checkout) -> str:
        """The URL of the provider's page that takes this payment; ProviderError when there is none."""
        ...


class HttpProvider:
    def __init__(self, base_url: str, key: bytes | None = None, timeout: float = 10.0) -> None:
        self.base_url, self.key, self.timeout = base_url.rstrip("/"), key, timeout

    def origin(self) -> str:
        parsed = urlparse(self.base_url)
        return f"{parsed.scheme}://{parsed.netloc}"

    def create_checkout(self, checkout: Checkout) -> str:
        raw = json.dumps({"token": checkout.token, "amount": str(checkout.amount), "currency": checkout.currency,
                          "webhook_url": checkout.webhook_url, "return_url": checkout.return_url},
                         separators=(",", ":")).encode()
        try:
            response = httpx.post(f"{self.base_url}/checkouts", content=raw, timeout=self.timeout,
                                  headers={"Content-Type": "application/json",
                                           "X-Duebot-Signature": sign(raw, self.key)})
        except httpx.HTTPError as exc:
            raise ProviderError(f"provider unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ProviderError(f"provider answered {response.status_code}")
        try:
            url = response.json()["redirect_url"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("provider answered without a redirect_url") from exc
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or f"{parsed.scheme}://{parsed.netloc}" != self.origin():
            raise ProviderError("the provider's redirect_url is not on the provider's own origin")
        return url


def configured_provider(provider_url: str | None) -> PaymentProvider | None:
    """The provider DUEBOT_PAYMENT_PROVIDER_URL names, None when unset (then nobody takes payments online)."""
    return HttpProvider(provider_url) if provider_url else None
