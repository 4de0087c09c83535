"""The billing relay: the account store's event log → signed POSTs to the operator's billing/CRM.

It reads new account events in id order after a cursor kept in Redis, maps each (events.py) and POSTs every
billing event to DUEBOT_BILLING_WEBHOOK_URL with `X-Duebot-Signature: sha256=<hex HMAC-SHA256 of the raw body>`
and `X-Duebot-Event-Id`. A failed POST (no answer, 5xx, 408, 425, 429) is tried again after an exponential
back-off, up to DUEBOT_BILLING_MAX_ATTEMPTS tries; any other 4xx, or the last failure, puts the event in the
dead-letter list (`duebot billing dead-letters`, `duebot billing retry`).

Delivery is at-least-once with a stable id. The cursor moves past an account event only once each of its billing
events was answered 2xx or dead-lettered, and every id answered 2xx is remembered (`sent`, 30 days) and never
posted again, by this relay or a new one on the same Redis. What remains: a crash after billing answered 2xx and
before the relay wrote that down posts the same event (same id, same body) again after the restart, so receivers
must dedupe by `X-Duebot-Event-Id`.

One relay runs at a time (a lock in Redis); `duebot serve` starts it when DUEBOT_BILLING_WEBHOOK_URL is set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import redis
from sqlalchemy import select

from duebot.accounts.models import Account, Event
from duebot.channels.billing.events import (
    KIND_TO_TYPE,
    AccountFacts,
    BillingEvent,
    Policy,
    SourceEvent,
    billing_events,
)

if TYPE_CHECKING:
    from duebot.accounts.store import AccountStore
    from duebot.settings import Settings

logger = logging.getLogger("duebot.billing")
PREFIX = "duebot:billing"
SENT_DAYS = 30
RETRIABLE = {408, 425, 429}
HEARTBEAT_TTL = 15


def signature(secret: bytes, body: bytes) -> str:
    """The value of `X-Duebot-Signature` for a body, both ways (events out, updates in)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, given: str | None) -> bool:
    # compare_digest raises on non-ASCII str: a hostile header must get "no", never an exception
    return bool(given) and given.isascii() and hmac.compare_digest(signature(secret, body), given)  # type: ignore[union-attr]


class LostLock(RuntimeError):
    pass


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    error: str = ""


class BillingRelay:
    def __init__(self, store: AccountStore, client: redis.Redis, url: str, secret: bytes, *,
                 policy: Policy | None = None, max_attempts: int = 6, backoff: float = 1.0, backoff_max: float = 60.0,
                 timeout: float = 10.0, settle: float = 2.0, batch: int = 200, prefix: str = PREFIX,
                 http: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.store, self.client, self.url, self.secret = store, client, url, secret
        self.policy = policy or Policy.load()
        self.max_attempts, self.backoff, self.backoff_max = max_attempts, backoff, backoff_max
        self.settle, self.batch, self.sleep = settle, batch, sleep
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.keys = {name: f"{prefix}:{name}" for name in ("cursor", "sent", "dead-letters", "dead-letters:count",
                                                             "relay", "lock")}
        self._token = uuid.uuid4().hex
        self._locked = False  # under `run`: the single-relay lock is renewed before every event

    @classmethod
    def from_settings(cls, settings: Settings | None = None, client: redis.Redis | None = None,
                      store: AccountStore | None = None) -> BillingRelay | None:
        """The configured relay, or None when DUEBOT_BILLING_WEBHOOK_URL is unset."""
        from duebot import clients
        from duebot.secrets import key
        from duebot.settings import load_settings

        settings = settings or load_settings()
        b = settings.billing
        if not b.webhook_url:
            return None
        return cls(store if store is not None else clients.account_store(settings),
                   client if client is not None else clients.redis_client(settings), b.webhook_url,
                   key("billing_webhook", settings), policy=Policy.load(b.policy), max_attempts=b.max_attempts,
                   backoff=b.backoff, backoff_max=b.backoff_max, timeout=b.timeout)

    # --- reading ------------------------------------------------------------------------------------------
    @property
    def cursor(self) -> int:
        return int(self.client.get(self.keys["cursor"]) or 0)

    def _advance(self, event_id: int) -> None:
        if event_id > self.cursor:  # one relay at a time (the lock): read-then-set cannot race
            self.client.set(self.keys["cursor"], event_id)

    def pending(self) -> list[SourceEvent]:
        """Account events after the cursor, oldest first, leaving out the last `settle` seconds (a row whose
        transaction is still open elsewhere may take a smaller id than one already visible)."""
        with self.store.session() as s:
            rows = s.execute(select(Event.id, Event.kind, Event.account_id, Event.detail, Event.at)
                             .where(Event.id > self.cursor).order_by(Event.id).limit(self.batch)).all()
        out, now = [], time.time()
        for row in rows:
            event = SourceEvent(row.id, row.kind, row.account_id, row.detail or {}, row.at)
            at = (event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)).timestamp()  # SQLite: naive
            if self.settle and now - at < self.settle:
                break
            out.append(event)
        return out

    def _facts(self, account_id: str | None) -> AccountFacts | None:
        if account_id is None:
            return None
        with self.store.session() as s:
            row = s.execute(select(Account.due_date, Account.currency).where(Account.id == account_id)).first()
        return AccountFacts(row.due_date, row.currency) if row else None

    # --- sending ------------------------------------------------------------------------------------------
    def is_sent(self, event_id: str) -> bool:
        return self.client.zscore(self.keys["sent"], event_id) is not None

    def _mark_sent(self, event_id: str) -> None:
        now = time.time()
        pipe = self.client.pipeline()
        pipe.zadd(self.keys["sent"], {event_id: now})
        pipe.zremrangebyscore(self.keys["sent"], 0, now - SENT_DAYS * 86400)
        pipe.execute()

    def post(self, event_id: str, event_type: str, body: bytes, attempt: int) -> tuple[bool, bool, str]:
        """One POST: (delivered, worth retrying, what went wrong)."""
        headers = {"Content-Type": "application/json", "X-Duebot-Signature": signature(self.secret, body),
                   "X-Duebot-Event-Id": event_id, "X-Duebot-Event-Type": event_type,
                   "X-Duebot-Delivery-Attempt": str(attempt), "User-Agent": "duebot-billing-relay/1"}
        try:
            answer = self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return False, True, f"{type(exc).__name__}: {str(exc)[:200]}"
        if 200 <= answer.status_code < 300:
            return True, False, ""
        retriable = answer.status_code >= 500 or answer.status_code in RETRIABLE
        return False, retriable, f"HTTP {answer.status_code}"

    def deliver(self, event_id: str, event_type: str, body: bytes, attempts: int | None = None) -> Outcome:
        """POST until a 2xx, a refusal not worth repeating, or `attempts` tries, with exponential back-off."""
        attempts = attempts or self.max_attempts
        error = ""
        for n in range(1, attempts + 1):
            delivered, retriable, error = self.post(event_id, event_type, body, n)
            if delivered:
                self._mark_sent(event_id)
                return Outcome(True, n)
            logger.warning("billing event %s: try %d of %d failed (%s)", event_id, n, attempts, error)
            if not retriable:
                return Outcome(False, n, error)
            if n < attempts:
                self.sleep(min(self.backoff * 2 ** (n - 1), self.backoff_max))
        return Outcome(False, attempts, error)

    def _dead_letter(self, event: BillingEvent, body: bytes, outcome: Outcome) -> None:
        entry = {"id": event.id, "type": event.type, "body": body.decode(), "error": outcome.error,
                 "attempts": outcome.attempts, "at": time.time()}
        pipe = self.client.pipeline()
        pipe.rpush(self.keys["dead-letters"], json.dumps(entry, separators=(",", ":")))
        pipe.incr(self.keys["dead-letters:count"])
        pipe.execute()
        logger.error("billing event %s dead-lettered after %d tries: %s", event.id, outcome.attempts, outcome.error)

    def send(self, event: BillingEvent) -> bool:
        """Deliver one event unless it was delivered before; dead-letter it if it cannot be. True if delivered."""
        if self._locked and not self._hold_lock():
            raise LostLock("another billing relay took over (this one stalled for a minute)")
        if self.is_sent(event.id):
            return True
        body = event.body()
        outcome = self.deliver(event.id, event.type, body)
        if not outcome.delivered:
            self._dead_letter(event, body, outcome)
        return outcome.delivered

    def run_once(self) -> int:
        """Handle one batch of account events; returns how many billing events were delivered."""
        delivered = 0
        for row in self.pending():
            facts = self._facts(row.account_id) if row.kind in KIND_TO_TYPE else None
            for event in billing_events(row, facts, self.policy):
                delivered += self.send(event)
            self._advance(row.id)  # each of its events answered 2xx or dead-lettered
        return delivered

    # --- dead letters ---------------------------------------------------------------------------------------
    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(self.keys["dead-letters"], 0, -1)]

    def retry(self, ids: Iterable[str] = (), attempts: int = 1) -> tuple[list[str], list[str]]:
        """Re-send dead letters (all, or those named): (delivered ids, still failing ids). A delivered one leaves
        the list; a crash in between re-sends it once more next time (same id: the receiver dedupes)."""
        wanted, sent, failing = set(ids), [], []
        for raw in self.client.lrange(self.keys["dead-letters"], 0, -1):
            entry = json.loads(raw)
            if wanted and entry["id"] not in wanted:
                continue
            if self.is_sent(entry["id"]) or self.deliver(entry["id"], entry["type"], entry["body"].encode(),
                                                          attempts).delivered:
                self.client.lrem(self.keys["dead-letters"], 1, raw)
                sent.append(entry["id"])
            else:
                failing.append(entry["id"])
        return sent, failing

    # --- the loop ---------------------------------------------------------------------------------------------
    def _hold_lock(self) -> bool:
        """Take or renew the single-relay lock."""
        renewed = self.client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
            "return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0",
            1, self.keys["lock"], self._token, 60_000)
        return bool(renewed)

    def run(self, stop: threading.Event | None = None, idle: float = 1.0) -> None:
        stop = stop or threading.Event()
        logger.info("billing relay: posting to %s from account event %d", self.url, self.cursor)
        while not stop.is_set():
            self.client.set(self.keys["relay"], self._token, ex=HEARTBEAT_TTL)
            if not self._hold_lock():
                stop.wait(idle)  # another relay runs: stand by
                continue
            self._locked = True
            try:
                if self.run_once() == 0:
                    stop.wait(idle)
            except LostLock as exc:
                logger.warning("billing relay: %s; standing by", exc)
            except (redis.RedisError, OSError) as exc:
                logger.warning("billing relay: %s; trying again", exc)
                stop.wait(idle * 5)
        self.client.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
                         "return 0", 1, self.keys["lock"], self._token)


def relay_running(client: redis.Redis, prefix: str = PREFIX) -> bool:
    return bool(client.exists(f"{prefix}:relay"))
