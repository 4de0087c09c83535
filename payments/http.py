"""POST /payments/webhook: the payment provider confirms a payment made through a duebot link.

The body is signed with HMAC-SHA256 under the payment secret (header `X-Duebot-Signature`, hex); the link
token inside names the account. A confirmation is applied once per `reference` (providers retry), closes
the account's collection when nothing is left owed, and becomes a `payment` outcome in the evidence log.

Body: a JSON object {"reference": 1-64 visible ASCII characters, "token": the link's token, "amount": a decimal
string or number read by accounts.models.parse_amount (finite, positive, at most 2 decimals, at most
99,999,999.99)}. Anything else, signed or not, is a 4xx naming the field: 403 for the signature, 422 for the body.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from decimal import Decimal
from functools import lru_cache

from fastapi import APIRouter, HTTPException, Request

from duebot import clients
from duebot.accounts.models import AmountError, parse_amount
from duebot.accounts.store import AccountStore
from duebot.evidence.inbox import EvidenceInbox
from duebot.payments.links import InvalidLink, sign, verify_token

router = APIRouter(tags=["payments"])
logger = logging.getLogger(__name__)
REFERENCE = re.compile(r"[\x21-\x7e]{1,64}")  # the payments.reference column; it also names the evidence record
MAX_TOKEN = 2048


@lru_cache(maxsize=1)
def _store() -> AccountStore:
    return clients.account_store()


@lru_cache(maxsize=1)
def _inbox() -> EvidenceInbox:
    return clients.evidence_inbox()


@router.post("/payments/webhook")
async def payment_webhook(request: Request) -> dict[str, object]:
    raw = await request.body()
    given = request.headers.get("X-Duebot-Signature", "")
    if not given.isascii() or not hmac.compare_digest(sign(raw), given):  # compare_digest refuses non-ASCII str
        logger.warning("payment webhook: bad signature from %s", request.client.host if request.client else "?")
        raise HTTPException(status_code=403, detail="bad signature")
    try:
        reference, amount, token = _confirmation(raw)
        link = verify_token(token, allow_expired=True)  # a provider may confirm after the link expired
    except (ValueError, InvalidLink) as exc:
        raise HTTPException(status_code=422, detail=f"invalid confirmation: {exc}") from exc
    if _store().get_account(link.account_id) is None:  # a link of an account removed since it was sent
        raise HTTPException(status_code=404, detail=f"unknown account {link.account_id}")
    try:
        applied = _store().apply_payment(link.account_id, amount, reference)  # also promises and plans kept
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=f"unknown account {link.account_id}") from exc
    account = _store().get_account(link.account_id)
    if applied:
        _inbox().submit("outcome", {"type": "payment", "account_id": link.account_id, "amount": str(amount),
                                 "reference": reference, "remaining": str(account.amount_due)},
                     conversation_id=f"payment-{reference}")
    return {"applied": applied, "account_status": account.status, "remaining": str(account.amount_due)}


def _confirmation(raw: bytes) -> tuple[str, Decimal, str]:
    """(reference, amount, token) of a signed body, or ValueError naming what is wrong with it."""
    try:
        # NaN and Infinity stay text (JSON has neither), so the amount check names them
        body = json.loads(raw, parse_float=Decimal, parse_constant=str)
    except RecursionError:
        raise ValueError("body nested too deeply") from None
    except ValueError as exc:  # not JSON, not UTF-8, or an integer of more digits than Python reads
        raise ValueError(f"not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(body, dict):
        raise ValueError(f"the body is a JSON object, not a {type(body).__name__}")
    missing = [name for name in ("reference", "amount", "token") if name not in body]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    reference, amount, token = body["reference"], body["amount"], body["token"]
    if isinstance(reference, int) and not isinstance(reference, bool):
        reference = str(reference)
    if not isinstance(reference, str) or not REFERENCE.fullmatch(reference):
        raise ValueError("reference: 1 to 64 visible ASCII characters")
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise ValueError("amount: a decimal string or number")
    try:
        value = parse_amount(str(amount))
    except AmountError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN:
        raise InvalidLink("malformed token")
    return reference, value, token
