"""The campaign worker: reads contact jobs from the Redis Stream, paces, asks the gate, contacts, records.

Crash safety, in order for each job: (1) an attempt already started or done is never contacted again;
(2) the gate reservation comes first and is stashed until the attempt row exists, so a crash in between
releases it; (3) the attempt is written `started` (a compare-and-set on its idempotency key) before the contact;
(4) outcome + the account's next step are written in one transaction, then the job is acknowledged. A job left
pending by a dead worker is re-claimed (XAUTOCLAIM); if its attempt was started, the contactor's `lookup`
decides: not contacted → this worker takes it over; contacted, or no lookup → done/unknown, never repeated."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from duebot.accounts.models import Account, Attempt
from duebot.accounts.store import AccountStore
from duebot.campaigns import planner
from duebot.campaigns.contactors import AttemptResult, ContactJob, Contactor, LookupContactor
from duebot.campaigns.control import CANCELLED, RUNNING, Control, Job
from duebot.campaigns.repo import Advance, CampaignRepo
from duebot.campaigns.scheduler import Scheduler
from duebot.campaigns.strategy import Step, Strategy, load_strategy
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.audit import AuditSink
from duebot.policies.reserve import GatesByPack, LiveGate
from duebot.policies.timeutil import format_instant

logger = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    concurrency: int = 1  # threads, each its own stream consumer (voice calls last minutes: run many)
    claim_idle: float = 30.0  # seconds a job may stay unacknowledged before another worker claims it
    heartbeat_ttl: float = 5.0  # a worker whose heartbeat expired is dead: its started attempts are resolved
    block_ms: int = 500
    scheduler_interval: float = 1.0
    call_lease: float = 900.0  # a voice slot held longer than this is freed (its worker died)
    voice_cps: float | None = None  # overrides of the strategy's pacing
    sms_rate: float | None = None
    max_calls: int | None = None
    evidence: bool = True
    follow_up_interval: float | None = None  # promise and plan follow-through; None: DUEBOT_FOLLOW_UP_INTERVAL, 0: off
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


class Worker:
    def __init__(self, store: AccountStore, client: redis.Redis, contactors: dict[str, Contactor],
                 options: WorkerOptions | None = None, audit_sink: AuditSink | None = None) -> None:
        self.store, self.client, self.contactors = store, client, contactors
        self.opt = options or WorkerOptions()
        self.name = self.opt.name
        self.repo = CampaignRepo(store)
        self.control = Control(client)
        self.control.ensure_group()
        self.scheduler = Scheduler(self.repo, self.control)
        self.inbox = EvidenceInbox(client) if self.opt.evidence else None
        self._gates = GatesByPack(client, audit_sink)
        self.stopping = threading.Event()
        self.handled = 0
        self._last_claim: dict[str, float] = {}

    # ------------------------------------------------------------ loop
    def run(self) -> None:
        self.control.heartbeat(self.name, self.opt.heartbeat_ttl)
        threads = [threading.Thread(target=self._heartbeat, daemon=True)]
        threads += [threading.Thread(target=self._consume, args=(i,), daemon=True)
                    for i in range(self.opt.concurrency)]
        for t in threads:
            t.start()
        follow_up, next_follow_up = self._follow_through(), 0.0
        try:
            while not self.stopping.wait(self.opt.scheduler_interval):
                with contextlib.suppress(redis.ConnectionError):
                    self.scheduler.tick(self.name)
                if follow_up is not None and time.monotonic() >= next_follow_up:
                    next_follow_up = time.monotonic() + follow_up[1]
                    try:
                        follow_up[0].tick()
                    except Exception:  # noqa: BLE001 - a bad round must not stop the campaign: the next one retries
                        logger.exception("promise follow-through round failed")
        finally:
            self.stopping.set()
            for t in threads[1:]:
                t.join(timeout=10)

    def _follow_through(self) -> tuple[Any, float] | None:
        """Promise and plan follow-through (campaigns/followup.py), every DUEBOT_FOLLOW_UP_INTERVAL seconds."""
        from duebot import clients
        from duebot.campaigns.followup import FollowThrough
        from duebot.settings import load_settings

        interval = self.opt.follow_up_interval
        if interval is None:
            interval = load_settings().payments.follow_up_interval
        if not interval:
            return None
        try:
            runner = FollowThrough(self.store, self.client, lambda: clients.sms_sender(client=self.client,
                                                                                        store=self.store),
                                   inbox=self.inbox, name=self.name, lease=max(3 * interval, 10.0))
        except Exception:  # noqa: BLE001 - e.g. a bad `follow_up` in the strategy: the campaign still runs
            logger.exception("promise follow-through NOT running")
            return None
        return runner, interval

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.opt.heartbeat_ttl / 3):
            with contextlib.suppress(redis.ConnectionError):
                self.control.heartbeat(self.name, self.opt.heartbeat_ttl)

    def _consume(self, index: int) -> None:
        consumer = f"{self.name}/{index}"
        while not self.stopping.is_set():
            try:
                self.poll(consumer)
            except redis.ConnectionError:
                time.sleep(1.0)  # Redis restarting: jobs wait in the stream

    def poll(self, consumer: str) -> int:
        """One round: jobs abandoned by dead consumers first, then new ones."""
        c = self.control
        entries: list = []
        now = time.monotonic()
        if now - self._last_claim.get(consumer, 0.0) >= min(1.0, self.opt.claim_idle / 2):
            self._last_claim[consumer] = now  # a claim scan per second is plenty: jobs wait claim_idle anyway
            _, claimed, _ = c.client.xautoclaim(c.stream, c.group, consumer,
                                                min_idle_time=int(self.opt.claim_idle * 1000), start_id="0-0", count=8)
            entries = [e for e in claimed if e[1]]
        if not entries:
            fresh = c.client.xreadgroup(c.group, consumer, {c.stream: ">"}, count=1, block=self.opt.block_ms)
            entries = fresh[0][1] if fresh else []
        for entry_id, fields in entries:
            if self.stopping.is_set():
                break  # unacknowledged: another worker claims it
            if self.handle(Job.from_fields(fields)):
                c.client.xack(c.stream, c.group, entry_id)
            self.handled += 1
        return len(entries)

    # ------------------------------------------------------------ one job
    def handle(self, job: Job) -> bool:
        """True when the job is finished with (acknowledge it); False to leave it pending for a later check."""
        if self.control.state(job.campaign_id) != RUNNING:
            return self._drop(job)
        attempt = self.repo.attempt(job.key)
        if attempt is not None and attempt.state in ("done", "unknown", "skipped"):
            return True
        account = self.repo.account(job.account_id)
        campaign = self.repo.get(job.campaign_id)
        if account is None or campaign is None:
            return True
        strategy = load_strategy(campaign.strategy)
        schedule = planner.schedule_for(strategy, account, dt.date.today())
        if job.step >= len(schedule):
            return True
        step = schedule[job.step]
        if step.channel == "human" and attempt is not None and attempt.state == "started":
            return self._human(job, step)  # its work item is open: the account waits on this step
        if attempt is not None and attempt.state == "started":
            return self._orphan(job, attempt, account, strategy, schedule, step)
        if account.status in planner.FINISHED_STATUSES:
            self.repo.finish_account(job.campaign_id, job.account_id, job.step, "stopped", account.status)
            return True
        if step.channel == "human":
            return self._human(job, step)
        return self._contact(job, account, strategy, schedule, step)

    def _human(self, job: Job, step: Step) -> bool:
        """A person's step (an agent call, a visit): a work item in the console's queue. The attempt stays started
        and the account on this step until a person closes the item (`close_human_step` counts it done then)."""
        from duebot.console.work_queue import load_rules

        now = time.time()
        rules = load_rules()
        due = rules.due(dt.datetime.fromtimestamp(now, dt.UTC), rules.high_risk("human_queue", step.name))
        if self.store.queue_human_step(job.key, campaign_id=job.campaign_id, account_id=job.account_id,
                                       step=job.step, step_name=step.name, now=now, due_at=due, reason=step.name):
            self.control.count(job.campaign_id, step.name, "human", "queued")
        return True

    def _contact(self, job: Job, account: Account, strategy: Strategy, schedule: tuple[Step, ...],
                 step: Step) -> bool:
        c, p = self.control, strategy.pacing
        slot = False
        if step.channel == "voice":
            limit = self.opt.max_calls or p.max_concurrent_calls
            while not c.acquire_slot(job.key, limit, self.opt.call_lease):
                if self.stopping.is_set() or c.state(job.campaign_id) != RUNNING:
                    return self.handle(job) if not self.stopping.is_set() else False
                time.sleep(0.05)
            slot = True
        try:
            rate = (self.opt.voice_cps if step.channel == "voice" else self.opt.sms_rate) or p.rate(step.channel)
            c.wait_token(step.channel, rate)
            # The pause check closest to the contact: a pause stops new contacts within milliseconds.
            state, stale = c.state_and_stash(job.campaign_id, job.key)
            if state != RUNNING:
                return self._drop(job)
            gate = self._gate(account.pack)
            if stale:
                gate.release(stale, "worker_died_before_contact")
                c.clear_reservation(job.key)
            now = time.time()
            request = {"now": format_instant(now),
                       "contact": {"channel": step.channel, "purpose": step.purpose, "to": account.phone,
                                   "debt_id": account.id, "ai_voice": True},
                       "subscriber": self.store.gate_subscriber(account.id),
                       "history": self.store.contact_history(account.id)}
            reservation = gate.reserve(request, key=job.key)  # idempotent: a retry reuses it
            decision = reservation.decision
            self._evidence(job, step, decision.to_json(), reservation.id)
            if not reservation.allowed:
                reasons = list(decision.reasons)
                self.repo.deny(job.key, campaign_id=job.campaign_id, account_id=job.account_id, step=job.step,
                               step_name=step.name, channel=step.channel, purpose=step.purpose, reasons=reasons,
                               next_allowed_at=decision.next_allowed_at,
                               advance=planner.after_denial(job.step, reasons, decision.next_allowed_at, now))
                c.count(job.campaign_id, step.name, step.channel, *[f"denied:{reason}" for reason in reasons])
                return True
            assert reservation.id is not None
            c.stash_reservation(job.key, reservation.id)
            if not self.repo.claim(job.key, campaign_id=job.campaign_id, account_id=job.account_id, step=job.step,
                                   step_name=step.name, channel=step.channel, purpose=step.purpose,
                                   worker=self.name, reservation_id=reservation.id, now=now):
                gate.release(reservation.id, "duplicate_job")
                c.clear_reservation(job.key)
                return False  # someone else holds it: re-checked when re-delivered
            return self._dial(job, account, strategy, schedule, step, reservation.id, now, clear_stash=True)
        finally:
            if slot:
                c.release_slot(job.key)

    def _dial(self, job: Job, account: Account, strategy: Strategy, schedule: tuple[Step, ...], step: Step,
              reservation_id: str | None, started_at: float, clear_stash: bool = False) -> bool:
        self.control.contact_started(job.campaign_id, started_at, job.key if clear_stash else None)
        contact_job = ContactJob(job.key, job.campaign_id, account.id, step.name, step.channel, step.purpose,
                                 account.phone, account.language, account.segment, str(account.amount_due),
                                 account.currency, reservation_id)
        try:
            result: AttemptResult | None = self.contactors[step.channel].contact(contact_job)
        except Exception:  # noqa: BLE001 - the subscriber may have been reached: counted, never repeated
            result = None
        self._record(job, account, strategy, schedule, step, result, started_at)
        return True

    def _record(self, job: Job, account: Account, strategy: Strategy, schedule: tuple[Step, ...], step: Step,
                result: AttemptResult | None, started_at: float) -> None:
        now = time.time()
        advance = planner.after_attempt(strategy, account, schedule, job.step, result.result if result else None,
                                        started_at, now)
        if result is None:
            self.repo.finish(job.key, state="unknown", fields={}, advance=advance)
            self.control.count(job.campaign_id, step.name, step.channel, "unknown")
            return
        self.repo.finish(job.key, state="done", advance=advance, fields={
            "outcome": result.outcome, "right_party": result.right_party, "result": result.result,
            "conversation_id": result.conversation_id, "duration": result.duration, "handled_by": result.handled_by})
        self.control.count(job.campaign_id, step.name, step.channel, "contacted", f"outcome:{result.outcome}")

    def _orphan(self, job: Job, attempt: Attempt, account: Account, strategy: Strategy,
                schedule: tuple[Step, ...], step: Step) -> bool:
        """A started attempt whose job came back: leave it to a live owner; finish a dead owner's."""
        if attempt.worker != self.name and self.control.alive(attempt.worker or ""):
            return False
        started = attempt.started_at or time.time()
        contactor = self.contactors.get(step.channel)
        if isinstance(contactor, LookupContactor):
            found = contactor.lookup(job.key)
            if not found.contacted:
                if self.control.state(job.campaign_id) != RUNNING:
                    return self._drop(job)
                if not self.repo.take_over(job.key, attempt.worker or "", self.name):
                    return False
                return self._dial(job, account, strategy, schedule, step, attempt.reservation_id, started)
            self._record(job, account, strategy, schedule, step, found.result, started)
            return True
        self._record(job, account, strategy, schedule, step, None, started)
        return True

    # ------------------------------------------------------------ helpers
    def _drop(self, job: Job) -> bool:
        """Paused or cancelled while waiting: no contact. A paused account is re-enqueued on resume."""
        if self.control.state(job.campaign_id) != CANCELLED:
            self.repo.release_job(job.campaign_id, job.account_id)
        return True

    def _gate(self, pack: str) -> LiveGate:
        return self._gates[pack]

    def _evidence(self, job: Job, step: Step, decision: dict[str, Any], reservation_id: str | None) -> None:
        if self.inbox is not None:
            self.inbox.submit("gate_decision", {"decision": decision, "account_id": job.account_id,
                                                "campaign_id": job.campaign_id, "step": step.name,
                                                "key": job.key, "reservation_id": reservation_id})


def close_human_step(store: AccountStore, client: redis.Redis, key: str, result: str | None = None) -> bool:
    """A person closed the work item of a campaign's human step (console/views_work.py): the attempt is done,
    handled by a person, the account goes on to its next step (or out of the campaign), and the step's completion
    is counted. Idempotent: False when the step was finished already."""
    repo = CampaignRepo(store)
    attempt = repo.attempt(key)
    if attempt is None or attempt.state != "started" or attempt.channel != "human":
        return False
    now = time.time()
    campaign, account = repo.get(attempt.campaign_id), repo.account(attempt.account_id)
    if campaign is None or account is None:
        advance = Advance(attempt.step + 1, now, "finished")
    else:
        strategy = load_strategy(campaign.strategy)
        schedule = planner.schedule_for(strategy, account, dt.date.today())
        advance = planner.after_attempt(strategy, account, schedule, attempt.step, result,
                                        attempt.started_at or now, now)
    if not store.finish_human_step(key, now=now, next_step=advance.step, due_at=advance.due_at, state=advance.state,
                                   reason=advance.reason):
        return False
    Control(client).count(attempt.campaign_id, attempt.step_name, "human", "done", "outcome:handled")
    return True


def run_worker(store: AccountStore, client: redis.Redis, contactors: dict[str, Contactor],
               options: WorkerOptions, on_start: Callable[[Worker], None] | None = None) -> None:
    worker = Worker(store, client, contactors, options)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if on_start:
        on_start(worker)
    worker.run()
