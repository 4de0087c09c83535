"""The work queue (issue 20) over the real web app, a real Redis, the SQLite account store and a real evidence log
drained by its single writer: items are made once from the store's events (the sync runs any number of times),
agents see and work the queue and QA does not, personal data shows only to the item's assignee (each view an
`access` record), resolving a dispute resumes collection with its evidence record, and a campaign's human step stays
open until a person closes its item."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from duebot.accounts.models import Account, Attempt, CampaignAccount, WorkItem
from duebot.campaigns.control import RUNNING, Job
from duebot.campaigns.worker import Worker, WorkerOptions
from duebot.console import work_queue
from duebot.console.users import Users
from tests.console.conftest import Site, csrf_of, login, wait_until

AGENTS = {"gina": "agent-pass-1234", "gus": "agent-pass-5678"}


def account(site: Site, account_id: str, name: str, phone: str, amount: str, segment: str = "cash_flow") -> None:
    site.store.upsert_accounts([Account(id=account_id, name=name, phone=phone, amount_due=Decimal(amount),
                                       due_date=dt.date(2026, 10, 1), segment=segment, timezone="UTC", pack="us",
                                       currency="USD", language="en", line_type="mobile", consent_ai_voice=True,
                                       consent_sms=True, status="open", wrong_number=False)])


def people(site: Site) -> None:
    WorkItem.__table__.create(site.store.engine, checkfirst=True)  # (migration 0008 makes it; harmless if it did)
    users = Users(site.store)
    for name, password in AGENTS.items():
        users.add(name, "agent", password)
    users.add("manon", "campaign_manager", "manager-pass-123")
    account(site, "A-1", "Maria Lopez", "+14155550101", "210.00")
    account(site, "A-2", "Wei Zhang", "+14155550102", "580.00")
    account(site, "A-3", "John Carter", "+14155550103", "7200.00")


def session(site: Site, user: str, password: str):  # noqa: ANN201 - a TestClient
    b = site.client()
    assert login(b, user, password).status_code == 303
    return b


def agent(site: Site, user: str = "gina"):  # noqa: ANN201
    return session(site, user, AGENTS[user])


def item_of(site: Site, kind: str, account_id: str) -> WorkItem:
    return next(i for i in site.store.work_items(kinds=(kind,)) if i.account_id == account_id)


def records(site: Site, conversation: str, kind: str) -> list:
    log = site.console.reader.log()
    return [r for r in log.records_for(conversation) if r.kind == kind] if log is not None else []


# ------------------------------------------------------------------------------------ the sync


def test_the_sync_makes_each_item_once_with_its_service_level(site: Site) -> None:
    people(site)
    s = site.store
    s.add_event("handoff", "A-1", "sms:A-1", {"reason": "crisis", "verified": "True", "outcome": "None",
                                              "last_message": "I can't go on"})
    s.add_event("callback", "A-1", "sms:A-1", {"date": "2030-01-15"})
    s.add_event("human_review", "A-3", "voice:A-3", {"reason": "amount_or_segment", "outcome": "promise"})
    s.add_event("legal_track", "A-2", "sms:A-2", {"days_overdue": "120"})
    s.add_event("legal_threat", "A-2", "sms:A-2", {"text": "my lawyer will call you"})
    s.add_event("promise_broken", "A-3", "voice:A-3", {"amount": "7200.00", "promise_id": "7"})
    s.add_event("promise_broken", "A-1", "sms:A-1", {"amount": "20.00"})  # below the threshold: no item
    s.open_dispute("A-2", "wrong_amount", "I was charged twice", "sms:A-2")
    s.set_status("A-1", "human_review")  # paused with no event: an item of its own

    assert work_queue.sync(s) == 8
    assert work_queue.sync(s) == 0 and work_queue.sync(s) == 0  # idempotent: keyed by (kind, source)
    items = s.work_items()
    assert len(items) == 8 and len({i.key for i in items}) == 8
    assert {i.kind for i in items} == {"handoff", "callback", "human_review", "legal_track", "legal_threat",
                                       "dispute", "promise_broken"}
    handoff = item_of(site, "handoff", "A-1")
    assert handoff.high_risk and handoff.reason == "crisis" and handoff.detail["last_message"] == "I can't go on"
    assert work_queue.aware(handoff.due_at) - work_queue.aware(handoff.created_at) == dt.timedelta(hours=24)
    dispute = item_of(site, "dispute", "A-2")
    assert not dispute.high_risk and dispute.detail["case_number"].startswith("D-")
    assert work_queue.aware(dispute.due_at) - work_queue.aware(dispute.created_at) == dt.timedelta(hours=72)
    assert item_of(site, "legal_threat", "A-2").high_risk and item_of(site, "legal_track", "A-2").high_risk
    assert work_queue.aware(item_of(site, "callback", "A-1").due_at) == dt.datetime(2030, 1, 16, tzinfo=dt.UTC)
    assert item_of(site, "promise_broken", "A-3").source == "promise:7"
    # personal values are sealed at rest, like an event's
    with s.session() as db:
        raw = db.get(WorkItem, handoff.id).detail
    assert raw["last_message"] != "I can't go on"


# ------------------------------------------------------------------------------------ who sees what


def test_agents_work_the_queue_managers_watch_it_and_qa_may_not(site: Site) -> None:
    people(site)
    site.store.open_dispute("A-2", "wrong_amount", "charged twice", "sms:A-2")
    page = agent(site).get("/console/work")
    assert page.status_code == 200 and 'data-testid="work"' in page.text and "A-2" in page.text
    assert agent(site).get("/console/", follow_redirects=False).headers["location"] == "/console/work"
    item = item_of(site, "dispute", "A-2")
    manager = session(site, "manon", "manager-pass-123")
    assert manager.get("/console/work").status_code == 200
    csrf = csrf_of(manager.get(f"/console/work/{item.id}").text)
    assert manager.post(f"/console/work/{item.id}/assign", data={"csrf_token": csrf}).status_code == 403
    qa = session(site, "quinn", "qa-pass-1234")
    assert qa.get("/console/work").status_code == 403
    assert qa.get(f"/console/work/{item.id}").status_code == 403
    assert 'href="/console/work"' not in qa.get("/console/transcripts").text


def test_personal_data_shows_only_to_the_assignee_and_each_view_is_logged(site: Site) -> None:
    people(site)
    site.store.add_event("handoff", "A-1", "sms:A-1", {"reason": "requested", "verified": "True",
                                                       "last_message": "call me on +14155550101"})
    work_queue.sync(site.store)
    item = item_of(site, "handoff", "A-1")
    gina, gus = agent(site, "gina"), agent(site, "gus")
    before = gina.get(f"/console/work/{item.id}").text
    assert "Maria Lopez" not in before and "+14155550101" not in before and "[name]" in before
    assert gina.post(f"/console/work/{item.id}/assign", data={"csrf_token": csrf_of(before)}).status_code == 303
    mine = gina.get(f"/console/work/{item.id}").text
    assert "Maria Lopez" in mine and "+14155550101" in mine and "Unmasked for you" in mine
    # the unmasked view was made durable before the page showed it
    unmasked = [r for r in records(site, "sms:A-1", "access") if r.body.get("masked") is False]
    assert unmasked and unmasked[-1].body["user"] == "gina" and unmasked[-1].body["role"] == "agent"
    assert unmasked[-1].body["item"] == item.id and unmasked[-1].body["purpose"] == "work item"
    assigned = [r for r in records(site, "sms:A-1", "annotation") if r.body.get("label") == "work_assigned"]
    assert assigned and assigned[-1].body["author"] == "gina"
    # another agent sees it masked (logged too) and may not act on it
    theirs = gus.get(f"/console/work/{item.id}").text
    assert "Maria Lopez" not in theirs and "Assigned to gina" in theirs
    assert gus.post(f"/console/work/{item.id}/close", data={"resolution": "resume", "note": "done by gus",
                                                            "csrf_token": csrf_of(theirs)}).status_code == 409
    wait_until(lambda: any(r.body.get("user") == "gus" and r.body.get("masked") is True
                           for r in records(site, "sms:A-1", "access")))
    # closed: nobody sees the personal data any more
    assert gina.post(f"/console/work/{item.id}/close", data={"resolution": "no_action", "note": "called back",
                                                             "csrf_token": csrf_of(mine)}).status_code == 303
    assert "Maria Lopez" not in gina.get(f"/console/work/{item.id}").text


# ------------------------------------------------------------------------------------ actions


def test_resolving_a_dispute_resumes_collection_with_its_evidence_record(site: Site) -> None:
    people(site)
    case = site.store.open_dispute("A-2", "wrong_amount", "I was charged twice", "sms:A-2")
    assert site.store.get_account("A-2").status == "disputed"
    gina = agent(site)
    gina.get("/console/work")
    item = item_of(site, "dispute", "A-2")
    page = gina.get(f"/console/work/{item.id}").text
    assert gina.post(f"/console/work/{item.id}/assign", data={"csrf_token": csrf_of(page)}).status_code == 303
    bad = gina.post(f"/console/work/{item.id}/dispute", data={"decision": "upheld", "amount": "-3",
                                                             "csrf_token": csrf_of(page)})
    assert bad.status_code == 422 and site.store.get_account("A-2").status == "disputed"
    done = gina.post(f"/console/work/{item.id}/dispute", data={"decision": "upheld", "amount": "290.00",
                                                              "note": "double charge confirmed",
                                                              "csrf_token": csrf_of(page)})
    assert done.status_code == 303
    after = site.store.get_account("A-2")
    assert after.status == "open" and after.amount_due == Decimal("290.00")  # collection resumes
    assert not site.store.has_open_dispute("A-2")
    closed = site.store.work_item(item.id)
    assert closed.state == "closed" and closed.resolution == "upheld" and closed.note == "double charge confirmed"
    record = next(r for r in records(site, "sms:A-2", "outcome") if r.body.get("type") == "dispute_resolution")
    assert record.body["decision"] == "upheld" and record.body["case_number"] == case.case_number
    assert record.body["amount_due"] == "290.00" and record.body["previous_amount"] == "580.00"
    assert record.body["by"] == "gina" and record.body["note"] == "double charge confirmed"
    # closed means closed: a second resolution is refused
    again = gina.post(f"/console/work/{item.id}/dispute", data={"decision": "rejected", "note": "again",
                                                               "csrf_token": csrf_of(page)})
    assert again.status_code == 409


def test_a_reviewed_account_returns_to_collection_only_through_its_item(site: Site) -> None:
    people(site)
    site.store.add_promise("A-3", Decimal("7200.00"), dt.date(2030, 1, 5), "voice:A-3", needs_review=True)
    site.store.set_status("A-3", "human_review")
    site.store.add_event("human_review", "A-3", "voice:A-3", {"reason": "amount_or_segment", "outcome": "promise"})
    gina = agent(site)
    gina.get("/console/work")
    assert site.store.get_account("A-3").status == "human_review"  # seeing the queue changes nothing
    item = item_of(site, "human_review", "A-3")
    page = gina.get(f"/console/work/{item.id}").text
    gina.post(f"/console/work/{item.id}/assign", data={"csrf_token": csrf_of(page)})
    assert gina.post(f"/console/work/{item.id}/review", data={"decision": "approved", "note": "income checked",
                                                              "csrf_token": csrf_of(page)}).status_code == 303
    assert site.store.get_account("A-3").status == "open"
    assert [p.needs_review for p in site.store.promises("A-3")] == [False]
    assert any(r.body.get("type") == "review_decision" and r.body["decision"] == "approved"
               for r in records(site, "voice:A-3", "outcome"))


# ------------------------------------------------------------------------------------ a campaign's human step


def test_a_campaign_human_step_stays_open_until_its_item_is_closed(site: Site) -> None:
    people(site)
    account(site, "L-1", "Lee Legacy", "+14155550199", "95.00", segment="legacy")  # [sms_collection, human_queue]
    campaigns = site.console.campaigns
    campaigns.repo.create("C-HQ", "legacy review", "default", None, ["L-1"])
    campaigns.repo.set_status("C-HQ", "running")
    worker = Worker(site.store, site.console.client, {}, WorkerOptions(evidence=False, name="test-worker"))
    worker.control.set_state("C-HQ", RUNNING)
    with site.store.session() as db:
        db.get(CampaignAccount, ("C-HQ", "L-1")).step = 1
    job = Job("C-HQ", "L-1", 1)
    assert worker.handle(job)
    assert worker.handle(job)  # delivered again (a resume re-enqueues it): still one item, counted once

    key = "C-HQ:L-1:1"
    assert site.store.get_account("L-1").status == "open"
    with site.store.session() as db:
        attempt, row = db.get(Attempt, key), db.get(CampaignAccount, ("C-HQ", "L-1"))
        assert attempt.state == "started" and attempt.handled_by == "human"
        assert row.step == 1 and row.state == "active" and row.queued  # parked on the step
    item = item_of(site, "human_queue", "L-1")
    assert item.source == key and item.state == "open"
    steps = {s["step"]: s for s in campaigns.status("C-HQ")["steps"]}
    assert steps["human_queue"]["completed"] == 0
    counts = worker.control.counts("C-HQ")
    assert counts[("human_queue", "human", "queued")] == 1 and ("human_queue", "human", "done") not in counts
    assert campaigns.repo.in_flight("C-HQ") == 1  # the scheduler does not complete the campaign meanwhile

    gina = agent(site)
    page = gina.get(f"/console/work/{item.id}").text
    gina.post(f"/console/work/{item.id}/assign", data={"csrf_token": csrf_of(page)})
    assert gina.post(f"/console/work/{item.id}/close", data={"resolution": "resume", "note": "called, will pay",
                                                             "csrf_token": csrf_of(page)}).status_code == 303
    with site.store.session() as db:
        attempt, row = db.get(Attempt, key), db.get(CampaignAccount, ("C-HQ", "L-1"))
        assert attempt.state == "done" and attempt.outcome == "handled" and attempt.finished_at <= time.time()
        assert row.state == "finished" and not row.queued
    assert {s["step"]: s for s in campaigns.status("C-HQ")["steps"]}["human_queue"]["completed"] == 1
    assert worker.control.counts("C-HQ")[("human_queue", "human", "done")] == 1
    assert worker.handle(job)  # a late duplicate changes nothing
    assert worker.control.counts("C-HQ")[("human_queue", "human", "done")] == 1
