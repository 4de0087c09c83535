"""The work queue in headless Chromium (issue 20): an agent takes a dispute from the queue, resolves it in the
console, and the account's collection resumes; the queue's screenshot (docs/screenshots/16-work-queue.png when
DUEBOT_SCREENSHOTS names that folder)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from duebot.accounts.models import Event, WorkItem
from duebot.console.users import Users
from tests.console.conftest import Stack, wait_until

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ["DUEBOT_SCREENSHOTS"]) if os.environ.get("DUEBOT_SCREENSHOTS") else None
PASSWORD = "agent-pass-1234"


def test_an_agent_resolves_a_dispute_and_collection_resumes(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    store = stack.console.store
    WorkItem.__table__.create(store.engine, checkfirst=True)  # (migration 0008 makes it; harmless if it did)
    if Users(store).get("gina") is None:
        Users(store).add("gina", "agent", PASSWORD)
    # what the bot left for a person: a crisis handoff a day and a half old (overdue), a callback, a dispute
    store.add_event("handoff", "A-1", "sms:A-1", {"reason": "crisis", "verified": "True", "outcome": "None",
                                                  "last_message": "I don't know how to go on"})
    with store.session() as s:
        s.execute(update(Event).where(Event.kind == "handoff", Event.account_id == "A-1")
                  .values(at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)))
    store.add_event("callback", "A-3", "voice:A-3", {"date": (dt.date.today() + dt.timedelta(days=2)).isoformat()})
    case = store.open_dispute("A-2", "wrong_amount", "I never used 580 dollars of data", "sms:A-2")
    assert store.get_account("A-2").status == "disputed"

    b = open_browser()
    b.login("gina", PASSWORD)
    assert b.page.url.endswith("/console/work")
    rows = b.page.locator('[data-testid="work"] tbody tr')
    assert rows.count() >= 3
    assert "overdue" in (rows.first.get_attribute("class") or "")  # soonest due first, highlighted
    b.page.screenshot(path=str((SHOTS or tmp_path) / "16-work-queue.png"), full_page=False)

    b.go("/console/work?kind=dispute")
    with b.page.expect_navigation():
        b.page.locator('[data-testid="work"] tbody tr', has_text="A-2").locator("a").first.click()
    assert "[name]" in b.page.get_by_test_id("name").inner_text()  # masked until it is hers
    b.button("Assign to me")
    assert b.page.get_by_test_id("name").inner_text() == "Wei Zhang"
    form = b.page.get_by_test_id("dispute-form")
    form.locator("#decision").select_option("upheld")
    form.locator("#amount").fill("320.00")
    form.locator("#dispute-note").fill("roaming charged twice; corrected")
    b.button("Resolve and resume collection")
    assert b.page.get_by_test_id("item-state").inner_text().strip() == "closed"
    assert b.page.get_by_test_id("account-status").inner_text().strip() == "open"

    account = store.get_account("A-2")
    assert account.status == "open" and account.amount_due == Decimal("320.00")
    assert not store.has_open_dispute("A-2") and not store.gate_subscriber("A-2")["dispute_open"]
    log = stack.console.reader
    wait_until(lambda: any(r.kind == "outcome" and r.body.get("type") == "dispute_resolution"
                           and r.body.get("case_number") == case.case_number
                           for r in (log.log().records_for("sms:A-2") if log.log() else [])))
