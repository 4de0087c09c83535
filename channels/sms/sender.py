"""Outbound SMS: rate limit → gate reservation → Twilio → contact history and evidence.

Order matters: the per-number rate slot and the gate reservation are both taken before Twilio is called, and
both are given back (the reservation with a reason) when Twilio refuses, so a refused text never counts as a
contact. Collection and reminder texts carry the pack's `sms_opt_out_notice` (a transactional text only when the
pack's notice rule lists `transactional`), and the gate is shown the final text so its own notice rule checks what
is really sent. Transactional texts (a payment link the subscriber asked for) have their own per-number rate
windows, with the same limits: they never use up the collection texts' budget, nor are starved by it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from duebot.accounts.store import AccountStore
from duebot.channels.sms.config import TWILIO_API, SmsSettings
from duebot.channels.sms.ratelimit import Limit, RateLimiter
from duebot.channels.sms.segments import segment_info
from duebot.channels.sms.texts import render, text_language
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.packs import Pack
from duebot.policies.reserve import LiveGate
from duebot.policies.rules import SmsOptOutNotice

logger = logging.getLogger(__name__)
NOTICE_PURPOSES = ("collection", "reminder")  # always carry the notice; other purposes when the pack's rule asks
TRANSACTIONAL = "transactional"
MESSAGE_KEY = "duebot:sms:msg:"  # MessageSid → who it was sent to (for status callbacks)
UNSUBSCRIBED = 21610  # Twilio: the recipient replied STOP to this sender; treat as an opt-out everywhere


class RebasedHttpClient(TwilioHttpClient):
    """The real Twilio HTTP client, sending to another base URL (the local fake): tests and demos exercise the
    real request building, auth and error parsing without the Twilio cloud."""

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_API):
            url = self.base + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)


def twilio_client(settings: SmsSettings) -> Client:
    http = RebasedHttpClient(settings.api_base, timeout=10) if settings.api_base != TWILIO_API else None
    return Client(settings.account_sid, settings.auth_token, http_client=http)


def utc_iso(at: float | dt.datetime) -> str:
    if isinstance(at, dt.datetime):
        at = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class SendResult:
    sent: bool
    reasons: tuple[str, ...] = ()
    sid: str | None = None
    body: str = ""
    segments: int = 0
    encoding: str = ""
    reservation_id: str | None = None
    retry_after: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def wants_notice(pack: Pack, purpose: str) -> bool:
    """Collection and reminder texts always carry the opt-out notice; another purpose (a transactional text) only
    when the pack's `sms_opt_out_notice` rule lists it."""
    return purpose in NOTICE_PURPOSES or any(
        isinstance(rule, SmsOptOutNotice) and purpose in rule.purposes for rule in pack.rules)


def with_notice(text: str, notice: str | None) -> str:
    if not notice or notice.casefold() in text.casefold():
        return text
    return f"{text.rstrip()} {notice}"


class SmsSender:
    def __init__(self, settings: SmsSettings, gates: LiveGate | Mapping[str, LiveGate], store: AccountStore,
                 client: Client, redis_client: redis.Redis, inbox: EvidenceInbox | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.store, self.client, self.redis, self.inbox, self.clock = (
            settings, store, client, redis_client, inbox, clock)
        self.gates: Mapping[str, LiveGate] = gates if isinstance(gates, Mapping) else {gates.pack.name: gates}
        limits = [Limit("minute", 60, settings.rate_per_minute), Limit("day", 86400, settings.rate_per_day)]
        self.limiter = RateLimiter(redis_client, limits, "duebot:sms:rate")
        self.transactional_limiter = RateLimiter(redis_client, limits, "duebot:sms:rate:transactional")

    def history(self, account_id: str) -> list[dict[str, Any]]:
        """The account's past texts as gate history entries (outcome from the latest delivery status)."""
        events = self.store.events(account_id)
        sent: dict[str, dict[str, Any]] = {}
        for event in events:
            if event.kind == "sms_sent":
                detail = event.detail or {}
                sent[detail["sid"]] = {"at": utc_iso(event.at), "channel": "sms", "purpose": detail["purpose"],
                                       "debt_id": account_id, "reservation_id": detail.get("reservation_id")}
        outcome = {"delivered": "delivered", "failed": "failed", "undelivered": "failed"}
        for event in events:  # a callback may be stored before its send: a second pass
            detail = event.detail or {}
            if event.kind == "sms_status" and detail.get("sid") in sent and detail.get("status") in outcome:
                sent[detail["sid"]]["outcome"] = outcome[detail["status"]]
        return list(sent.values())

    def send_reminder(self, account_id: str) -> SendResult:
        """The reminder text in the account's language (channels/sms/texts.yml), sent like any other text."""
        account = self.store.get_account(account_id)
        if account is None:
            return SendResult(False, ("UNKNOWN_ACCOUNT",))
        language = text_language(account.language)
        return self.send(account_id, render("reminder", language, brand=self.settings.brand_for(language)),
                         "reminder")

    def send(self, account_id: str, text: str, purpose: str = "reminder",
             reservation_id: str | None = None, conversation_id: str | None = None) -> SendResult:
        """Send one text to the account's own number. With `reservation_id` the caller (a campaign worker) already
        holds the gate's reservation for this contact; it is used, or released when nothing is sent.
        `conversation_id`: the conversation the text belongs to in the evidence log and the contact history (a
        payment link asked for in a chat or a call); default the account's SMS thread, `sms:<account_id>`."""
        account = self.store.get_account(account_id)
        if account is None:
            return SendResult(False, ("UNKNOWN_ACCOUNT",))
        gate = self.gates.get(account.pack)
        if gate is None or gate.pack is None:
            return SendResult(False, ("NO_GATE_FOR_PACK",), detail={"pack": account.pack})
        notice = gate.pack.notice_for(text_language(account.language))  # the notice in the text's language
        body = with_notice(text, notice) if wants_notice(gate.pack, purpose) else text
        info = segment_info(body)
        if info.segments > self.settings.max_segments:
            if reservation_id is not None:
                gate.release(reservation_id, "sms_too_long")
            return SendResult(False, ("TOO_LONG",), body=body, segments=info.segments, encoding=info.encoding,
                              detail={"max_segments": self.settings.max_segments})
        now = self.clock()
        limiter = self.transactional_limiter if purpose == TRANSACTIONAL else self.limiter
        admission = limiter.take(account.phone, now)
        if not admission.admitted:
            if reservation_id is not None:
                gate.release(reservation_id, "sms_rate_limited")
            return SendResult(False, (f"RATE_LIMITED_{(admission.blocked_by or '').upper()}",), body=body,
                              segments=info.segments, encoding=info.encoding, retry_after=admission.retry_after)
        if reservation_id is None:
            request = {"now": utc_iso(now),
                       "contact": {"channel": "sms", "purpose": purpose, "to": account.phone, "debt_id": account.id,
                                   "text": body},
                       "subscriber": self.store.gate_subscriber(account.id), "history": self.history(account.id)}
            reservation = gate.reserve(request)
            if reservation.id is None:
                limiter.give_back(account.phone, admission.token)
                return SendResult(False, reservation.decision.reasons, body=body, segments=info.segments,
                                  encoding=info.encoding, detail={"decision": reservation.decision.to_json()})
            reservation_id = reservation.id
        sender = ({"messaging_service_sid": self.settings.messaging_service_sid}
                  if self.settings.messaging_service_sid else {"from_": self.settings.from_number})
        try:
            message = self.client.messages.create(to=account.phone, body=body,
                                                  status_callback=self.settings.public("/twilio/sms/status"),
                                                  **sender)
        except TwilioRestException as exc:
            gate.release(reservation_id, f"twilio_{exc.code}")
            limiter.give_back(account.phone, admission.token)
            if exc.code == UNSUBSCRIBED:
                self.store.set_opt_out(account.phone, True, channel="sms", source="twilio:21610")
            logger.warning("sms to account %s refused by Twilio: %s %s", account.id, exc.code, exc.msg)
            return SendResult(False, (f"TWILIO_{exc.code}",), body=body, segments=info.segments,
                              encoding=info.encoding, detail={"status": exc.status, "message": exc.msg})
        conversation_id = conversation_id or f"sms:{account.id}"
        self.store.add_event("sms_sent", account.id, conversation_id,
                             {"sid": message.sid, "purpose": purpose, "reservation_id": reservation_id,
                              "segments": info.segments, "encoding": info.encoding, "status": message.status})
        self.redis.set(MESSAGE_KEY + message.sid,
                       json.dumps({"account_id": account.id, "conversation_id": conversation_id}),
                       ex=30 * 86400)
        if self.inbox is not None:
            stamp = utc_iso(now)
            self.inbox.submit("turn", {"speaker": "bot", "channel": "sms", "started_at": stamp, "ended_at": stamp,
                                       "purpose": purpose, "message_sid": message.sid,
                                       "reservation_id": reservation_id, "segments": info.segments},
                              conversation_id=conversation_id, payloads={"text": body.encode()})
        return SendResult(True, (), message.sid, body, info.segments, info.encoding, reservation_id)
