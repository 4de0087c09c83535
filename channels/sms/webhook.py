"""Twilio Messaging webhooks: POST /twilio/sms (inbound texts) and POST /twilio/sms/status (delivery).

Inbound, in order: the signature (403 and a log line when it is missing or wrong), then MessageSid
idempotency (Twilio's signature has no timestamp or nonce, so a captured request stays valid forever; a
MessageSid seen before gets an empty answer and nothing else happens), then the keywords STOP/START/HELP,
which never reach the dialogue model, then the per-number reply limit, and only then Rasa. The reply goes back
as TwiML <Message> in the HTTP answer: it answers the subscriber's own text, so it is not a new outbound
contact; what Rasa says is already evidence (its event broker), what never reaches Rasa is recorded here.

Mount with `app.include_router(duebot.channels.sms.webhook.router)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Request, Response
from twilio.twiml.messaging_response import MessagingResponse

from duebot import clients
from duebot.accounts.store import AccountStore
from duebot.channels.rasa_client import RasaClient, RasaRouter, RasaUnavailable
from duebot.channels.sms.config import SmsSettings
from duebot.channels.sms.keywords import Keyword, KeywordMatcher
from duebot.channels.sms.ratelimit import Limit, RateLimiter
from duebot.channels.sms.segments import segment_info
from duebot.channels.sms.sender import MESSAGE_KEY, UNSUBSCRIBED, utc_iso, with_notice
from duebot.channels.sms.texts import render, text_language
from duebot.channels.twilio_signature import check
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.packs import BUILTIN, Pack, load_pack
from duebot.settings import load_settings

logger = logging.getLogger(__name__)
router = APIRouter(tags=["sms"])
SEEN_KEY = "duebot:sms:seen:"
TWIML = "application/xml"
MAX_BODY = 1600  # Twilio's limit for one (concatenated) message


@dataclass
class SmsChannel:
    """Everything the webhooks need, built once per process (tests build their own)."""

    settings: SmsSettings
    store: AccountStore
    redis: redis.Redis
    rasa: RasaClient | RasaRouter  # one client: every conversation goes to it
    inbox: EvidenceInbox | None
    packs: dict[str, Pack] = field(default_factory=lambda: {name: load_pack(name) for name in BUILTIN})
    reply_limit: int = 30  # replies per number per minute: stops bot-to-bot loops and floods

    def __post_init__(self) -> None:
        self.router = RasaRouter.of(self.rasa)
        every = [word for pack in self.packs.values() for word in pack.opt_out_keywords]
        # Cease-contact phrases of both languages for every account, whatever its pack or language (keywords.py).
        self.matchers = {name: KeywordMatcher(pack.opt_out_keywords, phrases=True)
                         for name, pack in self.packs.items()}
        self.any_matcher = KeywordMatcher(every, phrases=True)  # unknown sender: honour every pack's words
        self.replies = RateLimiter(self.redis, [Limit("minute", 60, self.reply_limit)], "duebot:sms:replies")

    @classmethod
    def from_settings(cls) -> SmsChannel:
        settings = load_settings()
        client = clients.redis_client(settings)
        return cls(SmsSettings.from_settings(settings), clients.account_store(settings), client,
                   clients.rasa_router(settings), clients.evidence_inbox(client),
                   reply_limit=settings.sms.reply_rate_per_minute)

    # ------------------------------------------------------------------ evidence

    def record_turn(self, conversation_id: str, speaker: str, text: str, **extra: object) -> None:
        if self.inbox is None:
            return
        stamp = utc_iso(time.time())
        try:
            self.inbox.submit("turn", {"speaker": speaker, "channel": "sms", "started_at": stamp, "ended_at": stamp,
                                       **extra}, conversation_id=conversation_id, payloads={"text": text.encode()})
        except redis.RedisError:
            logger.exception("evidence inbox unavailable; turn of %s not recorded", conversation_id)

    def record_outcome(self, conversation_id: str, kind: str, **extra: object) -> None:
        if self.inbox is None:
            return
        try:
            self.inbox.submit("outcome", {"type": kind, "channel": "sms", **extra}, conversation_id=conversation_id)
        except redis.RedisError:
            logger.exception("evidence inbox unavailable; outcome of %s not recorded", conversation_id)

    # ------------------------------------------------------------------ keywords

    def _say(self, kind: str, language: str, pack: Pack | None) -> str:
        stop = "TD" if pack is not None and pack.name == "cn" else "STOP"
        return render(kind, language, brand=self.settings.brand_for(language), stop=stop,
                      help_contact=self.settings.help_contact_for(language))

    def help_text(self, pack: Pack | None, language: str = "en") -> str:
        return self._say("help", language, pack)

    def handle_keyword(self, keyword: Keyword, phone: str, text: str, conversation_id: str,
                       account_id: str | None, pack: Pack | None, account_language: str | None = None) -> str:
        self.record_turn(conversation_id, "debtor", text, keyword=keyword.value)
        language = text_language(account_language, text)
        if keyword is Keyword.OPT_OUT:
            # Every number the phone is on, every channel: the gate reads this flag for voice and SMS alike.
            self.store.set_opt_out(phone, True, channel="sms", source=f"keyword:{text.strip()[:32]}")
            self.record_outcome(conversation_id, "opt_out", keyword=text.strip()[:32], account_id=account_id)
            if account_id is not None:  # the account's history, and billing's `opt_out` event (channels/billing)
                self.store.add_event("opt_out", account_id, conversation_id,
                                     {"channel": "sms", "keyword": text.strip()[:32]})
            reply = self._say("opt_out", language, pack)
        elif keyword is Keyword.OPT_IN:
            self.store.set_opt_out(phone, False, channel="sms", source=f"keyword:{text.strip()[:32]}")
            reply = self._say("opt_in", language, pack)
        else:
            reply = self.help_text(pack, language)
        self.record_turn(conversation_id, "system", reply, keyword=keyword.value)
        return reply

    # ------------------------------------------------------------------ a text from a subscriber

    async def handle(self, phone: str, text: str) -> list[str]:
        accounts = self.store.accounts_by_phone(phone)
        account = accounts[0] if accounts else None  # one phone, several accounts: the oldest import wins
        pack = self.packs.get(account.pack) if account else None
        conversation_id = (f"sms:{account.id}" if account else
                           "sms:unknown:" + hashlib.sha256(phone.encode()).hexdigest()[:16])  # no number in ids
        matcher = self.matchers.get(pack.name) if pack else self.any_matcher
        keyword = (matcher or self.any_matcher).classify(text)
        if keyword is not None:
            return [self.handle_keyword(keyword, phone, text, conversation_id, account.id if account else None,
                                        pack, account.language if account else None)]
        if account is None:
            logger.info("sms from a number with no account (%s); not answered", conversation_id)
            return []
        if self.store.is_opted_out(phone):
            # Opted out means no contact at all until START: keep what they said, say nothing.
            self.record_turn(conversation_id, "debtor", text, answered=False, reason="opted_out")
            return []
        admission = self.replies.take(phone)
        if not admission.admitted:
            logger.warning("sms replies to %s over %d/min; message kept, not answered", conversation_id,
                           self.reply_limit)
            self.record_turn(conversation_id, "debtor", text, answered=False, reason="reply_rate_limited")
            return []
        messages = await self.router.ask(conversation_id, text, account.id, "sms", account.language)
        replies = [m["text"] for m in messages]
        if replies and pack is not None:  # the notice in the conversation's language: 回复TD退订 or Reply STOP…
            replies[-1] = with_notice(replies[-1], pack.notice_for(text_language(account.language)))
        return replies


@lru_cache(maxsize=1)
def get_channel() -> SmsChannel:
    """The process's channel; tests replace it with `app.dependency_overrides[get_channel]`."""
    return SmsChannel.from_settings()


Channel = Annotated[SmsChannel, Depends(get_channel)]


def _twiml(replies: list[str]) -> Response:
    response = MessagingResponse()
    for reply in replies:
        for start in range(0, len(reply), MAX_BODY):  # Twilio refuses a body over 1600 characters
            response.message(reply[start:start + MAX_BODY])
    return Response(str(response), media_type=TWIML)


async def _verified_form(request: Request, channel: SmsChannel) -> dict[str, str] | None:
    form = await request.form()
    url = channel.settings.public(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    if any(not isinstance(value, str) for _, value in form.multi_items()):
        problem = "a file in the form (Twilio posts none; media come as MediaUrl fields)"  # not signable either
    else:
        problem = check(channel.settings, url, form, request.headers)
    if problem is not None:
        logger.warning("twilio webhook %s rejected: %s (from %s)", request.url.path, problem,
                       request.client.host if request.client else "?")
        return None
    return {key: str(value) for key, value in form.items()}


@router.post("/twilio/sms")
async def inbound_sms(request: Request, channel: Channel) -> Response:
    form = await _verified_form(request, channel)
    if form is None:
        return Response("forbidden", status_code=403, media_type="text/plain")
    sid, phone = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
    if not sid or not phone:
        return Response("MessageSid and From are required", status_code=400, media_type="text/plain")
    seen = SEEN_KEY + sid
    if not channel.redis.set(seen, "1", nx=True, ex=channel.settings.dedupe_ttl):
        logger.info("twilio retry or replay of %s: already handled, no second reply", sid)
        return _twiml([])
    try:
        replies = await channel.handle(phone, form.get("Body", ""))
    except RasaUnavailable:
        channel.redis.delete(seen)  # let Twilio's retry try again
        logger.exception("rasa unavailable for %s", sid)
        return Response("dialogue unavailable", status_code=503, media_type="text/plain")
    except Exception:
        channel.redis.delete(seen)
        raise
    for reply in replies:
        info = segment_info(reply)
        logger.debug("reply to %s: %d chars, %s, %d segments", sid, len(reply), info.encoding, info.segments)
    return _twiml(replies)


@router.post("/twilio/sms/status")
async def sms_status(request: Request, channel: Channel) -> Response:
    form = await _verified_form(request, channel)
    if form is None:
        return Response("forbidden", status_code=403, media_type="text/plain")
    sid, status = form.get("MessageSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        return Response("MessageSid and MessageStatus are required", status_code=400, media_type="text/plain")
    if not channel.redis.set(f"{SEEN_KEY}{sid}:{status}", "1", nx=True, ex=channel.settings.dedupe_ttl):
        return Response(status_code=204)
    raw = channel.redis.get(MESSAGE_KEY + sid)
    sent = json.loads(raw) if raw else {}
    if not sent and (accounts := channel.store.accounts_by_phone(form.get("To", ""))):
        # Twilio may call back before the sender has recorded the send (it races the API response).
        sent = {"account_id": accounts[0].id, "conversation_id": f"sms:{accounts[0].id}"}
    error = form.get("ErrorCode")
    detail = {"sid": sid, "status": status, "error_code": error}
    channel.store.add_event("sms_status", sent.get("account_id"), sent.get("conversation_id"), detail)
    if sent.get("conversation_id"):
        channel.record_turn(sent["conversation_id"], "system", f"delivery status {status}", message_sid=sid,
                            delivery_status=status, error_code=error)
    if error == str(UNSUBSCRIBED) and form.get("To"):
        channel.store.set_opt_out(form["To"], True, channel="sms", source="twilio:21610")
    return Response(status_code=204)
