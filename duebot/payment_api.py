"""POST /payments/webhook: the payment provider confirms a payment made through a duebot link.

The body is signed with HMAC-SHA256 under the payment secret (header `X-Duebot-Signature`, hex); the link
token inside names the account. A confirmation is applied once per `reference` (providers retry), closes
the account's collection when nothing is left owed, and becomes a `payment` outcome in the evidence log.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import redis
from fastapi import APIRouter, HTTPException, Request

from duebot.accounts.store import AccountStore
from duebot.evidence.inbox import EvidenceInbox
from duebot.payments import InvalidLink, sign, verify_token

router = APIRouter(tags=["payments"])
logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _store() -> AccountStore:
    return AccountStore()


@lru_cache(maxsize=1)
def _inbox() -> EvidenceInbox | None:
    url = os.environ.get("REDIS_URL")
    return EvidenceInbox(redis.Redis.from_url(url)) if url else None


@router.post("/payments/webhook")
async def payment_webhook(request: Request) -> dict[str, object]:
    raw = await request.body()
    given = request.headers.get("X-Duebot-Signature", "")
    if not hmac.compare_digest(sign(raw), given):
        logger.warning("payment webhook: bad signature from %s", request.client.host if request.client else "?")
        raise HTTPException(status_code=403, detail="bad signature")
    try:
        body = json.loads(raw)
        reference = str(body["reference"])
        amount = Decimal(str(body["amount"]))
        link = verify_token(str(body["token"]), now=0)  # an expired link may still be paid late
    except (KeyError, ValueError, InvalidOperation, InvalidLink) as exc:
        raise HTTPException(status_code=422, detail=f"invalid confirmation: {exc}") from exc
    if amount <= 0:
        raise HTTPException(status_code=422, detail="invalid confirmation: amount must be positive")
    try:
        applied = _store().record_payment(link.account_id, amount, reference)
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=f"unknown account {link.account_id}") from exc
    account = _store().get_account(link.account_id)
    if applied and (inbox := _inbox()) is not None:
        inbox.submit("outcome", {"type": "payment", "account_id": link.account_id, "amount": str(amount),
                                 "reference": reference, "remaining": str(account.amount_due)},
                     conversation_id=f"payment-{reference}")
    return {"applied": applied, "account_status": account.status, "remaining": str(account.amount_due)}
