"""Promise and plan follow-through (issue 20, campaigns/followup.py): reminders before each date through the real
SMS sender (the Twilio fake) and the live gate, never at night; kept or broken at date + grace, partial payments
summed; a broken promise counts and re-enters the campaign exactly once, crashes included."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from duebot.accounts.importer import import_csv
from duebot.accounts.models import Account, Obligation
from duebot.accounts.store import AccountStore
from duebot.campaigns.control import STREAM, Control
from duebot.campaigns.followup import MARKER, FollowThrough, FollowUpPolicy
from duebot.campaigns.repo import CampaignRepo
from duebot.channels.sms.sender import SmsSender, twilio_client
from duebot.demo.twilio_fake import FakeConfig, TwilioFake
from duebot.evidence.inbox import STREAM as EVIDENCE
from duebot.evidence.inbox import EvidenceInbox
from duebot.policies.audit import JsonlAuditSink
from duebot.policies.reserve import LiveGate
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, sms_settings
from tests.served import ACCOUNTS_CSV

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = FollowUpPolicy(remind_days_before=2, remind_hour=10, grace_days=1, on_broken_promise="human_queue")


def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).timestamp()


@dataclass
class Rig:
    store: AccountStore
    client: redis.Redis
    fake: TwilioFake
    clock: list[float]
    follow: FollowThrough

    def tick(self, when: float) -> dict[str, int]:
        self.clock[0] = when
        return self.follow.tick(force=True)

    def texts(self) -> list[dict]:
        return self.fake.snapshot()["messages"]

    def obligation(self, key: str) -> Obligation:
        return next(o for o in self.store.obligations(key.split("|")[0]) if o.key == key.split("|")[1])


@pytest.fixture
def rig(tmp_path: Path, redis_client: redis.Redis) -> Iterator[Rig]:
    store = AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}")
    assert import_csv(ACCOUNTS_CSV, store).created == 5
    clock = [0.0]
    with TwilioFake(FakeConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=(FROM,))) as fake:
        settings = sms_settings("http://127.0.0.1:9", fake.url, rate_per_minute=10, rate_per_day=10)
        gates = {name: LiveGate(redis_client, name, sink=JsonlAuditSink(tmp_path / "gate.jsonl"))
                 for name in ("us", "cn")}
        sender = SmsSender(settings, gates, store, twilio_client(settings), redis_client,
                           EvidenceInbox(redis_client), clock=lambda: clock[0])
        follow = FollowThrough(store, redis_client, sender, policy=POLICY, inbox=EvidenceInbox(redis_client),
                               clock=lambda: clock[0])
        yield Rig(store, redis_client, fake, clock, follow)


def outcomes(client: redis.Redis) -> list[dict]:
    bodies = [json.loads(fields[b"body"]) for _, fields in client.xrange(EVIDENCE)]
    return [b for b in bodies if b.get("type") in ("promise_kept", "promise_broken", "reminder_due",
                                                   "campaign_reentry")]


def jobs(client: redis.Redis, account_id: str) -> list[tuple[str, int]]:
    return [(f[b"campaign_id"].decode(), int(f[b"step"])) for _, f in client.xrange(STREAM)
            if f[b"account_id"].decode() == account_id]


def test_installment_reminders_go_before_each_date_and_never_at_night(rig: Rig) -> None:
    today = dt.date.today()
    dates = [today + dt.timedelta(days=5), today + dt.timedelta(days=35)]
    rig.store.add_plan("A-5", [{"due_date": d.isoformat(), "amount": "70.00"} for d in dates], "chat-1")
    assert rig.tick(at(today, 12))["scheduled"] == 2 and rig.texts() == []  # nothing is due yet
    for due in dates:
        remind_day = due - dt.timedelta(days=2)
        rig.tick(at(remind_day, 23, 30))  # due since 10:00, but 23:30 in Shanghai: the cn pack's quiet hours
        rig.tick(at(remind_day + dt.timedelta(days=1), 7, 59))  # the gate said 08:00: not before
        key = f"A-5|plan:1:{dates.index(due)}"
        assert rig.obligation(key).remind_state == "pending"
        assert rig.obligation(key).remind_detail["reasons"] == ["QUIET_HOURS"]
        assert rig.tick(at(remind_day + dt.timedelta(days=1), 8, 0, ))["reminded"] == 1
        rig.tick(at(remind_day + dt.timedelta(days=1), 9, 0))  # again: never twice
        assert rig.obligation(key).remind_state == "sent"
    texts = rig.texts()
    assert len(texts) == 2 and all(t["to"] == "+8613910998888" for t in texts)
    assert all("70" not in t["body"] and "10000" in t["body"] for t in texts)  # no amount; the callback number
    events = [e for e in rig.store.events("A-5") if e.kind.startswith("reminder")]
    sent_at = [e.at.astimezone(SHANGHAI) for e in events if e.kind == "reminder_sent"]
    assert len(sent_at) == 2
    deferred = [e for e in events if e.kind == "reminder_deferred"]
    assert deferred and all(e.detail["reasons"] == ["QUIET_HOURS"] for e in deferred)
    assert [o["state"] for o in outcomes(rig.client) if o["type"] == "reminder_due"] == ["sent", "sent"]


def test_partial_payments_count_toward_the_earliest_open_part(rig: Rig) -> None:
    today = dt.date.today()
    parts = [today + dt.timedelta(days=5 + 30 * i) for i in range(3)]
    rig.store.add_plan("A-4", [{"due_date": d.isoformat(), "amount": "400.00"} for d in parts], None)
    rig.tick(at(today, 12))
    assert rig.store.apply_payment("A-4", Decimal("150.00"), "p-1")
    assert rig.store.apply_payment("A-4", Decimal("350.00"), "p-2")
    assert not rig.store.apply_payment("A-4", Decimal("350.00"), "p-2")  # the same reference: once
    first, second, third = rig.store.obligations("A-4")
    assert (first.status, first.paid, first.remind_state) == ("kept", Decimal("400.00"), "cancelled")
    assert (second.status, second.paid) == ("open", Decimal("100.00"))
    assert third.paid == 0 and rig.store.get_account("A-4").amount_due == Decimal("700.00")
    # the second part's deadline passes with only 100 of 400 paid: broken
    rig.tick(second.check_at + 1)
    assert rig.store.obligations("A-4")[1].status == "broken"
    assert rig.store.plans("A-4")[0].status == "broken"


def test_a_promise_paid_in_parts_by_its_deadline_is_kept(rig: Rig) -> None:
    today = dt.date.today()
    rig.store.add_promise("A-1", Decimal("230.50"), today + dt.timedelta(days=5), "chat-2")
    rig.tick(at(today, 12))
    rig.store.apply_payment("A-1", Decimal("100.00"), "a-1")
    assert rig.store.obligations("A-1")[0].status == "open"  # partial: still open, the reminder still pending
    rig.store.apply_payment("A-1", Decimal("130.50"), "a-2")
    row = rig.store.obligations("A-1")[0]
    assert (row.status, row.paid, row.remind_state) == ("kept", Decimal("230.50"), "cancelled")
    assert rig.store.promises("A-1")[0].status == "kept"
    assert rig.store.get_account("A-1").status == "paid"
    rig.tick(row.check_at + 10)  # the check finds nothing left to do; the records reach the evidence inbox
    assert [o["type"] for o in outcomes(rig.client)] == ["promise_kept"]
    assert rig.texts() == []
    assert [e.kind for e in rig.store.events("A-1")] == ["payment", "payment", "promise_kept"]


def _campaign(rig: Rig, account_id: str) -> tuple[str, int]:
    """A running campaign the account left when it promised (stopped after its first step)."""
    repo = CampaignRepo(rig.store)
    repo.create("C-follow", "follow", "default", None, [account_id])
    repo.set_status("C-follow", "running")
    Control(rig.client).set_state("C-follow", "running")
    repo.finish_account("C-follow", account_id, 0, "stopped", "promise")  # after its first step
    from duebot.campaigns import planner
    from duebot.campaigns.strategy import load_strategy

    schedule = planner.schedule_for(load_strategy("default"), rig.store.get_account(account_id), dt.date.today(),
                                    score=None)
    return "C-follow", [s.name for s in schedule].index("human_queue")


def test_a_broken_promise_counts_and_reenters_the_campaign_exactly_once(rig: Rig) -> None:
    today = dt.date.today()
    campaign, step = _campaign(rig, "A-5")
    rig.store.add_promise("A-5", Decimal("210.00"), today + dt.timedelta(days=5), "chat-3")
    rig.tick(at(today, 12))
    rig.store.apply_payment("A-5", Decimal("50.00"), "w-1")  # a partial payment is not the promise
    deadline = rig.store.obligations("A-5")[0].check_at
    rig.tick(deadline - 60)
    assert rig.store.obligations("A-5")[0].status == "open"  # the last day of grace is not over
    rig.tick(deadline + 1)
    rig.tick(deadline + 2)  # the check runs twice
    row = rig.store.obligations("A-5")[0]
    assert (row.status, row.paid, row.reentry_state) == ("broken", Decimal("50.00"), "done")
    assert rig.store.promises("A-5")[0].status == "broken"
    assert rig.store.segment_history(["A-5"]) == {"A-5": (1, 0)}  # what the segmentation reads
    assert jobs(rig.client, "A-5") == [(campaign, step)]
    with rig.store.session() as s:
        from duebot.accounts.models import CampaignAccount

        membership = s.get(CampaignAccount, (campaign, "A-5"))
        assert (membership.state, membership.step, membership.queued) == ("active", step, True)
    kinds = [e.kind for e in rig.store.events("A-5")]
    assert kinds.count("promise_broken") == 1 and kinds.count("campaign_reentry") == 1
    # the reminder first fell due at 23:59 on the last day of grace: refused for the night, and too late after it
    assert (row.remind_state, row.remind_detail["reasons"]) == ("refused", ["QUIET_HOURS"]) and rig.texts() == []
    assert sorted(o["type"] for o in outcomes(rig.client)) == ["campaign_reentry", "promise_broken", "reminder_due"]


def test_a_crash_between_the_steps_of_reentry_enqueues_once(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    today = dt.date.today()
    campaign, step = _campaign(rig, "A-5")
    rig.store.add_promise("A-5", Decimal("210.00"), today + dt.timedelta(days=5), None)
    rig.tick(at(today, 12))
    deadline = rig.store.obligations("A-5")[0].check_at

    def crash(**_: object) -> int:
        raise ConnectionError("killed before the job was added")

    monkeypatch.setattr(rig.follow, "_enqueue_once", crash)
    with pytest.raises(ConnectionError):
        rig.tick(deadline + 1)
    assert rig.store.obligations("A-5")[0].reentry_state == "enqueuing" and jobs(rig.client, "A-5") == []
    monkeypatch.undo()
    # the next process: the job was added, then it died before writing `done`
    again = FollowThrough(rig.store, rig.client, None, policy=POLICY, clock=lambda: deadline + 5)
    real = again._enqueue_once
    done: list[int] = []

    def add_then_die(**kwargs: object) -> int:
        done.append(int(real(**kwargs)))
        raise ConnectionError("killed after the job was added")

    monkeypatch.setattr(again, "_enqueue_once", add_then_die)
    with pytest.raises(ConnectionError):
        again.tick(force=True)
    assert done == [1] and jobs(rig.client, "A-5") == [(campaign, step)]
    monkeypatch.undo()
    third = FollowThrough(rig.store, rig.client, None, policy=POLICY, clock=lambda: deadline + 9)
    third.tick(force=True)
    third.tick(force=True)
    assert jobs(rig.client, "A-5") == [(campaign, step)]
    assert rig.store.obligations("A-5")[0].reentry_state == "done"
    assert rig.client.exists(MARKER + "promise:1") == 1
    assert [e.kind for e in rig.store.events("A-5")].count("campaign_reentry") == 1


def test_a_reminder_claim_lost_in_a_crash_is_never_texted_twice(rig: Rig) -> None:
    today = dt.date.today()
    rig.store.add_promise("A-5", Decimal("210.00"), today + dt.timedelta(days=5), None)
    rig.tick(at(today, 12))
    with rig.store.session() as s:  # a round claimed the reminder, then died before texting or recording
        row = s.get(Obligation, "promise:1")
        row.remind_state, row.remind_claimed_at = "sending", at(today + dt.timedelta(days=3), 10)
    rig.tick(at(today + dt.timedelta(days=3), 11))
    assert rig.store.obligations("A-5")[0].remind_state == "unknown" and rig.texts() == []


def test_no_account_no_obligation(rig: Rig) -> None:
    with rig.store.session() as s:
        assert s.get(Account, "A-1") is not None
    assert rig.tick(at(dt.date.today(), 12)) == {"scheduled": 0, "checked": 0, "reminded": 0, "reentered": 0,
                                                 "announced": 0}
