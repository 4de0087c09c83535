"""POST /billing/accounts/{account_id}: the operator's billing/CRM updates an account's balance and service state.

Signed like the events duebot sends it: `X-Duebot-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under the
`billing_webhook` secret (403 when bad or missing). The body names the account and the request id again, so that
both are signed: a signed body replayed against another account, or under another `X-Billing-Request-Id`, is
refused (422). A request id is applied once: the same request again answers 200 with `"applied": false`; the same
id with another body is a conflict (409).

Body: {"request_id": 1-64 of A-Z a-z 0-9 . _ : -, "account_id": the path's, "amount_due": the new balance (decimal
string or number, finite, positive or zero, at most 2 decimals), "service_state": active | suspended |
restore_pending, "restore_amount": what the subscriber pays to get service back (only with suspended or
restore_pending)}; at least one of amount_due and service_state; nothing else. Every applied update is an account
event `billing_update` (and `service_state` when the state is given: the bot reads it to tell the subscriber, see
`service_state`) and an evidence record (`outcome` of type `billing_update`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select

from duebot import clients
from duebot.accounts.models import EVENT_CONTEXT, Account, AmountError, Event, parse_amount, seal_values
from duebot.accounts.store import AccountStore
from duebot.channels.billing.relay import signature_matches
from duebot.evidence.inbox import EvidenceInbox

router = APIRouter(tags=["billing"])
logger = logging.getLogger("duebot.billing")
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
SERVICE_STATES = ("active", "suspended", "restore_pending")
FIELDS = ("request_id", "account_id", "amount_due", "service_state", "restore_amount")
_ZERO = re.compile(r"\+?(?:0+(?:\.0{0,2})?|\.0{1,2})")
LOCK_MS = 30_000


@lru_cache(maxsize=1)
def _store() -> AccountStore:
    return clients.account_store()


@lru_cache(maxsize=1)
def _inbox() -> EvidenceInbox:
    return clients.evidence_inbox()


@lru_cache(maxsize=1)
def _secret() -> bytes:
    from duebot.secrets import key

    return key("billing_webhook")


def amount_or_zero(value: Any, field: str) -> Decimal:
    """parse_amount, plus zero (a balance billing has closed)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"{field}: a decimal string or number")
    text = str(value).strip()
    if _ZERO.fullmatch(text):
        return Decimal("0.00")
    try:
        return parse_amount(text, field)
    except AmountError as exc:
        raise ValueError(str(exc)) from None


def parse_update(raw: bytes, account_id: str, request_id: str) -> dict[str, Any]:
    """The update a signed body asks for, or ValueError naming the field."""
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError("X-Billing-Request-Id: 1 to 64 of A-Z a-z 0-9 . _ : -")
    try:
        # NaN and Infinity stay text, so the amount check names them; numbers stay exact
        body = json.loads(raw, parse_float=Decimal, parse_constant=str)
    except RecursionError:
        raise ValueError("body nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(body, dict):
        raise ValueError(f"the body is a JSON object, not a {type(body).__name__}")
    if unknown := sorted(set(body) - set(FIELDS)):
        raise ValueError(f"unknown field {', '.join(unknown)[:200]}")
    if body.get("request_id") != request_id:
        raise ValueError("request_id: must equal X-Billing-Request-Id (the header is not signed, the body is)")
    if body.get("account_id") != account_id:
        raise ValueError("account_id: must equal the account in the path")
    if "amount_due" not in body and "service_state" not in body:
        raise ValueError("amount_due or service_state: at least one")
    update: dict[str, Any] = {"request_id": request_id, "account_id": account_id}
    if "amount_due" in body:
        update["amount_due"] = amount_or_zero(body["amount_due"], "amount_due")
    if "service_state" in body:
        if body["service_state"] not in SERVICE_STATES:
            raise ValueError(f"service_state: one of {', '.join(SERVICE_STATES)}")
        update["service_state"] = body["service_state"]
    if "restore_amount" in body:
        if update.get("service_state") not in ("suspended", "restore_pending"):
            raise ValueError("restore_amount: only with service_state suspended or restore_pending")
        if isinstance(body["restore_amount"], bool) or not isinstance(body["restore_amount"], str | int | Decimal):
            raise ValueError("restore_amount: a decimal string or number")
        try:
            update["restore_amount"] = parse_amount(str(body["restore_amount"]), "restore_amount")
        except AmountError as exc:
            raise ValueError(str(exc)) from None
    return update


def _previous(store: AccountStore, request_id: str) -> Event | None:
    with store.session() as s:
        return s.scalars(select(Event).where(Event.kind == "billing_update",
                                             Event.detail["request_id"].as_string() == request_id).limit(1)).first()


def apply_update(store: AccountStore, update: dict[str, Any], body_sha256: str) -> tuple[bool, dict[str, Any]]:
    """Apply once per request id, in one transaction: (applied now, what the account holds after)."""
    request_id, account_id = update["request_id"], update["account_id"]
    done = _previous(store, request_id)
    if done is not None:
        if done.detail.get("body_sha256") != body_sha256 or done.account_id != account_id:
            raise FileExistsError(request_id)
        return False, {k: v for k, v in done.detail.items() if k != "body_sha256"}
    with store.session() as s:
        account = s.get(Account, account_id)
        if account is None:
            raise KeyError(account_id)
        record: dict[str, Any] = {"request_id": request_id, "body_sha256": body_sha256,
                                  "previous_amount_due": str(account.amount_due)}
        if "amount_due" in update:
            account.amount_due = update["amount_due"]
            if account.amount_due == 0 and account.status == "open":
                account.status = "paid"
            elif account.amount_due > 0 and account.status == "paid":
                account.status = "open"
        record["amount_due"] = str(account.amount_due)
        if "service_state" in update:
            state = {"state": update["service_state"], "request_id": request_id}
            if "restore_amount" in update:
                state["restore_amount"] = str(update["restore_amount"])
            s.add(Event(kind="service_state", account_id=account_id, conversation_id=f"billing-{request_id}",
                        detail=seal_values(state, EVENT_CONTEXT, store.keyring)))
            record["service_state"] = update["service_state"]
            if "restore_amount" in update:
                record["restore_amount"] = str(update["restore_amount"])
        s.add(Event(kind="billing_update", account_id=account_id, conversation_id=f"billing-{request_id}",
                    detail=seal_values(record, EVENT_CONTEXT, store.keyring)))
    return True, {k: v for k, v in record.items() if k != "body_sha256"}


def service_state(store: AccountStore, account_id: str) -> dict[str, str] | None:
    """The account's service state as billing last told it ({"state", "restore_amount"?, "request_id"}), or None."""
    with store.session() as s:
        row = s.scalars(select(Event).where(Event.account_id == account_id, Event.kind == "service_state")
                        .order_by(Event.id.desc()).limit(1)).first()
    return dict(row.detail) if row is not None else None


@router.post("/billing/accounts/{account_id}")
async def billing_update(account_id: str, request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not signature_matches(_secret(), raw, request.headers.get("X-Duebot-Signature")):
        logger.warning("billing update: bad signature from %s", request.client.host if request.client else "?")
        raise HTTPException(status_code=403, detail="bad signature")
    try:
        update = parse_update(raw, account_id, request.headers.get("X-Billing-Request-Id", ""))
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"invalid update: {exc}") from exc
    store, inbox = _store(), _inbox()
    lock = f"duebot:billing:inbound:{update['request_id']}"
    if not inbox.client.set(lock, b"1", nx=True, px=LOCK_MS):  # the same request, in flight elsewhere
        raise HTTPException(status_code=409, detail="this request id is being applied; retry later")
    try:
        try:
            applied, state = apply_update(store, update, hashlib.sha256(raw).hexdigest())
        except KeyError:
            raise HTTPException(status_code=404, detail=f"unknown account {account_id}") from None
        except FileExistsError:
            raise HTTPException(status_code=409, detail="request id already used for another update") from None
        if applied:
            inbox.submit("outcome", {"type": "billing_update", "account_id": account_id, **state},
                         conversation_id=f"billing-{update['request_id']}")
    finally:
        inbox.client.delete(lock)
    return {"applied": applied, "account_id": account_id, **state}
