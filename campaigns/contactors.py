"""The one interface between campaigns and channels: `Contactor.contact(job) -> AttemptResult`.

The real SMS sender and voice dialer implement it; `SimulatedContactor` stands in for tests and demos with
per-segment personas. A contactor that can say whether a given idempotency key was already sent (`lookup`)
lets a crashed attempt be finished exactly once; without it, an attempt whose outcome was lost in a crash is
counted as contacted and never repeated (a double contact is a compliance breach, a lost one only a KPI loss)."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import redis

from duebot.accounts.store import AccountStore


@dataclass(frozen=True, slots=True)
class ContactJob:
    key: str  # idempotency key (campaign:account:step): pass it to the provider when it supports one
    campaign_id: str
    account_id: str
    step_name: str
    channel: str  # sms | voice
    purpose: str  # reminder | collection
    to: str
    language: str
    segment: str
    amount: str
    currency: str
    reservation_id: str | None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: str | None  # gate vocabulary: delivered | failed | no_answer | voicemail | answered | conversation
    right_party: bool = False
    result: str | None = None  # evidence OUTCOME_TYPES (promise, plan, payment, dispute, opt_out…) or None
    conversation_id: str | None = None
    duration: float = 0.0  # seconds of handling
    handled_by: str = "bot"


@dataclass(frozen=True, slots=True)
class Lookup:
    contacted: bool
    result: AttemptResult | None = None  # None when contacted but the outcome is not known


@runtime_checkable
class Contactor(Protocol):
    def contact(self, job: ContactJob) -> AttemptResult: ...


@runtime_checkable
class LookupContactor(Contactor, Protocol):
    def lookup(self, key: str) -> Lookup: ...


Factory = Callable[..., Contactor]
REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Name a contactor factory for `duebot campaign worker --contactor CHANNEL=NAME`."""
    REGISTRY[name] = factory


def build(spec: str, store: AccountStore, client: redis.Redis, **options: Any) -> Contactor:
    """A registered name, or "package.module:factory"; the factory gets (store, client, **options)."""
    factory = REGISTRY.get(spec)
    if factory is None:
        if ":" not in spec:
            raise ValueError(f"unknown contactor {spec!r}: registered {sorted(REGISTRY)} or module:factory")
        module, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory(store, client, **options)


# ---------------------------------------------------------------- simulation

@dataclass(frozen=True)
class Persona:
    answer: float  # a call is answered
    right_party: float  # …by the debtor
    results: dict[str, float]  # after a right-party conversation (the rest: no settlement)
    keep: float  # a promise is kept
    sms_pay: float  # an SMS reminder leads to a self-service payment by link
    sms_stop: float = 0.01


PERSONAS: dict[str, Persona] = {
    "forgot": Persona(0.75, 0.9, {"payment": 0.45, "promise": 0.25, "plan": 0.05, "dispute": 0.02,
                                  "opt_out": 0.02, "complaint": 0.01, "handoff": 0.03}, 0.85, 0.25),
    "cash_flow": Persona(0.65, 0.85, {"plan": 0.35, "promise": 0.2, "payment": 0.1, "hardship": 0.05,
                                      "dispute": 0.03, "opt_out": 0.03, "complaint": 0.02, "handoff": 0.05},
                         0.7, 0.05),
    "dispute": Persona(0.6, 0.85, {"dispute": 0.5, "promise": 0.1, "payment": 0.05, "complaint": 0.05,
                                   "opt_out": 0.03, "handoff": 0.08}, 0.6, 0.02),
    "malicious": Persona(0.35, 0.6, {"promise": 0.15, "payment": 0.05, "opt_out": 0.08, "complaint": 0.04,
                                     "dispute": 0.05, "handoff": 0.05}, 0.3, 0.01, 0.04),
    "legacy": Persona(0.4, 0.6, {"payment": 0.05, "promise": 0.1, "plan": 0.1, "dispute": 0.05,
                                 "handoff": 0.1}, 0.4, 0.02),
    "new_business": Persona(0.7, 0.8, {"payment": 0.3, "promise": 0.3, "plan": 0.1, "dispute": 0.1,
                                       "handoff": 0.05}, 0.8, 0.1),
}
CERTAIN = Persona(1.0, 1.0, {}, 1.0, 0.0, 0.0)  # always reached, never settles: tests that count contacts


class SimulatedContactor:
    """Realistic outcomes from a seeded RNG per idempotency key (the same key always gives the same outcome,
    whichever worker runs it), applied to the account store as a real conversation would. Every dial is
    counted in a Redis ledger, which is also how `lookup` knows whether a key was contacted."""

    LEDGER = "duebot:sim:dials"
    RESULTS = "duebot:sim:results"

    def __init__(self, store: AccountStore, client: redis.Redis, seed: int = 0, latency: float = 0.0,
                 personas: dict[str, Persona] | None = None, certain: bool = False) -> None:
        self.store, self.client, self.seed, self.latency = store, client, seed, latency
        self.personas = personas or PERSONAS
        self.certain = certain

    def lookup(self, key: str) -> Lookup:
        if self.client.hget(self.LEDGER, key) is None:
            return Lookup(False)
        raw = self.client.hget(self.RESULTS, key)
        return Lookup(True, AttemptResult(**json.loads(raw)) if raw is not None else None)

    def contact(self, job: ContactJob) -> AttemptResult:
        rng = random.Random(f"{self.seed}:{job.key}")
        persona = CERTAIN if self.certain else self.personas.get(job.segment, PERSONAS["forgot"])
        # The dial: from here on the subscriber may have been reached.
        self.client.hincrby(self.LEDGER, job.key, 1)
        self.client.rpush(f"{self.LEDGER}:log", f"{job.key}|{time.time():.6f}")
        if self.latency:
            time.sleep(rng.uniform(0, self.latency))
        result = self._sms(job, rng, persona) if job.channel == "sms" else self._call(job, rng, persona)
        self._apply(job, result, rng, persona)
        self.client.hset(self.RESULTS, job.key, json.dumps(asdict(result)))
        return result

    def _sms(self, job: ContactJob, rng: random.Random, p: Persona) -> AttemptResult:
        if rng.random() >= (1.0 if self.certain else 0.97):
            return AttemptResult("failed")
        roll = rng.random()
        if roll < p.sms_pay:
            return AttemptResult("delivered", True, "payment", f"sim-{job.key}", rng.uniform(30, 300))
        if roll < p.sms_pay + p.sms_stop:
            return AttemptResult("delivered", False, "opt_out", f"sim-{job.key}", 5.0)
        return AttemptResult("delivered")

    def _call(self, job: ContactJob, rng: random.Random, p: Persona) -> AttemptResult:
        if rng.random() >= p.answer:
            roll = rng.random()
            return AttemptResult("no_answer" if roll < 0.6 else "voicemail" if roll < 0.95 else "failed",
                                 duration=rng.uniform(20, 40))
        conversation_id = f"sim-{job.key}"
        if rng.random() >= p.right_party:
            third = "wrong_number" if rng.random() < 0.3 else "third_party"
            return AttemptResult("answered", False, third, conversation_id, rng.uniform(20, 60))
        roll, acc = rng.random(), 0.0
        for result, share in p.results.items():
            acc += share
            if roll < acc:
                handled_by = "human" if result == "handoff" else "bot"
                return AttemptResult("conversation", True, result, conversation_id, rng.uniform(90, 420),
                                     handled_by)
        return AttemptResult("conversation", True, None, conversation_id, rng.uniform(60, 240))

    def _apply(self, job: ContactJob, r: AttemptResult, rng: random.Random, p: Persona) -> None:
        """What a real conversation would have written to the store."""
        s, a, conv = self.store, job.account_id, r.conversation_id
        amount = Decimal(job.amount)
        today = dt.date.today()
        if r.result == "payment":
            s.record_payment(a, amount, f"sim-pay-{job.key}")
        elif r.result == "promise":
            s.add_promise(a, amount, today + dt.timedelta(days=7), conv)
            if rng.random() < p.keep:
                s.record_payment(a, amount, f"sim-kept-{job.key}")
        elif r.result == "plan":
            part = (amount / 3).quantize(Decimal("0.01"))
            s.add_plan(a, [{"due_date": (today + dt.timedelta(days=30 * i)).isoformat(),
                            "amount": str(part if i < 2 else amount - 2 * part)} for i in range(3)], conv)
        elif r.result == "dispute":
            s.open_dispute(a, "simulated", "", conv)
        elif r.result == "opt_out":
            s.set_opt_out(job.to, True, job.channel, f"simulated:{job.key}")
        elif r.result in ("complaint", "hardship", "wrong_number", "third_party", "handoff"):
            s.add_event(r.result, a, conv, {"campaign_id": job.campaign_id, "step": job.step_name})


def _simulated(store: AccountStore, client: redis.Redis, **options: Any) -> Contactor:
    return SimulatedContactor(store, client, **options)


def _twilio_sms(store: AccountStore, client: redis.Redis, **options: Any) -> Contactor:
    from duebot.channels.sms.contactor import TwilioSmsContactor  # Twilio's client only where it is used

    return TwilioSmsContactor(store, client, **options)


register("simulated", _simulated)
register("twilio_sms", _twilio_sms)
