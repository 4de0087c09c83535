"""Each role in real headless Chromium: what it sees (masked or not), what it may do, and that the server refuses
the rest with 403 when the request is sent by hand from the page (not only that the button is hidden)."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from duebot.console.users import Users
from duebot.evidence.bundle import verify_bundle
from duebot.evidence.log import EvidenceLog
from tests.console.conftest import PEOPLE, Browser, Stack, wait_until

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("DUEBOT_SCREENSHOTS", "")) if os.environ.get("DUEBOT_SCREENSHOTS") else None


def shot(b: Browser, name: str, tmp_path: Path) -> None:
    """Screenshots of the main pages (docs/screenshots when DUEBOT_SCREENSHOTS names it); and the page must fit a
    1366 px laptop screen without sideways scrolling."""
    width = b.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{name}: page is {width} px wide"
    b.page.screenshot(path=str((SHOTS or tmp_path) / f"{name}.png"), full_page=False)


def records(stack: Stack, conversation_id: str, kind: str) -> list:
    with EvidenceLog.open(stack.data_dir / "evidence", readonly=True) as log:
        return [r for r in log.records_for(conversation_id) if r.kind == kind]


def content(b: Browser) -> str:
    return b.page.inner_text("main")


def test_login_csrf_and_lockout(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    Users(stack.console.store).add("locky", "qa_reviewer", "locky-pass-123")
    with stack.console.store.session() as s:
        stored = s.execute(text("SELECT password_hash FROM console_users WHERE username='locky'")).scalar_one()
    assert stored.startswith("$argon2id$") and "locky-pass-123" not in stored

    b = open_browser()
    assert b.go("/console/campaigns").url.endswith("/console/login?next=/console/campaigns")
    shot(b, "01-login", tmp_path)
    for _ in range(4):
        b.login("locky", "wrong-password")
        assert "Wrong user name or password." in content(b)
    b.login("locky", "wrong-password")
    assert "locked for 15 minutes" in content(b)
    b.login("locky", "locky-pass-123")  # the right password is refused while locked
    assert "locked" in content(b) and "/console/login" in b.page.url

    # a login form posted without the session's CSRF token is refused
    raw = httpx.post(f"{stack.url}/console/login", data={"username": "locky", "password": "locky-pass-123"})
    assert raw.status_code == 403

    admin = open_browser("ada")
    admin.go("/console/users")
    row = admin.page.locator("tr", has_text="locky")
    assert "locked until" in row.inner_text()
    admin.press(row.get_by_role("button", name="Unlock"))
    assert "unlock: locky" in content(admin)
    b.login("locky", "locky-pass-123")
    assert b.page.inner_text("[data-testid=whoami]").startswith("locky")


def test_admin_manages_users_and_nothing_else(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    a = open_browser("ada")
    assert a.page.url.endswith("/console/users")
    a.page.fill("#new-username", "oscar")
    a.page.select_option("#new-role", "auditor")
    a.page.fill("#new-password", "oscar-pass-123")
    a.button("Add")
    assert "added oscar" in content(a)
    assert "oscar" in a.page.inner_text("[data-testid=users]")
    shot(a, "10-users", tmp_path)
    nav = a.page.inner_text("nav")
    assert "Transcripts" not in nav and "Users" in nav
    # the server refuses what the page does not offer
    assert a.get_status("/console/transcripts") == 403
    assert a.get_status("/console/transcript?c=sms:A-1") == 403
    assert a.get_status(f"/console/campaigns/{stack.campaign_id}/preview") == 403
    assert a.post(f"/console/campaigns/{stack.campaign_id}/launch") == 403
    assert a.post("/console/unmask", {"c": "sms:A-1", "reason": "curious admin"}) == 403
    assert a.get_status("/console/export/bundle?c=sms:A-1") == 403
    # and a state change without the CSRF token is refused even for the right role
    assert a.post("/console/users", {"username": "mallory", "role": "admin", "password": "mallory-pass-1"},
                  csrf=False) == 403
    assert Users(stack.console.store).get("mallory") is None


def test_campaign_manager(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    m = open_browser("manon")
    assert m.page.url.endswith("/console/campaigns")
    assert stack.campaign_id in content(m)
    shot(m, "02-campaigns", tmp_path)

    # import: bad rows are listed with line and reason, and the values they quote are masked
    upload = tmp_path / "november.csv"
    upload.write_text("account_id,name,phone,amount,due_date\nU-1,Eve Adams,+14155550177,99.00,2026-10-01\n"
                      "U-2,Bob Stone,+1 415 555 01,12.00,2026-10-01\nU-3,Ann Lee,+14155550179,lots,2026-10-01\n")
    m.go("/console/campaigns/import")
    m.page.set_input_files("#file", str(upload))
    m.page.fill("#name", "November test")
    m.button("Import")
    result = m.page.inner_text("[data-testid=import-result]")
    assert "1 rows imported (1 new accounts, 0 updated)" in result
    errors = m.page.inner_text("[data-testid=row-errors]")
    assert re.search(r"3\s+phone", errors) and re.search(r"4\s+amount", errors), errors
    assert "415 555 01" not in errors and "[phone]" in errors
    shot(m, "03-import", tmp_path)

    # preview with the gate's reasons
    m.go(f"/console/campaigns/{stack.campaign_id}/preview")
    assert "contact_now" in m.page.inner_text("[data-testid=by-status]")
    reasons = m.page.inner_text("[data-testid=by-reason]")
    assert re.search(r"QUIET_HOURS\s+3", reasons) and re.search(r"ALLOWED\s+30", reasons), reasons
    shot(m, "04-preview", tmp_path)

    # launch, watch the progress move without reloading, pause, resume
    m.go(f"/console/campaigns/{stack.campaign_id}")
    m.button("Launch")
    assert m.page.inner_text("[data-testid=campaign-status]") == "running"
    before = m.page.inner_text("[data-testid=progress] table")
    m.page.wait_for_function("(b) => document.querySelector('[data-testid=progress] table').innerText !== b",
                             arg=before, timeout=30_000)
    shot(m, "05-campaign-progress", tmp_path)
    m.button("Pause")
    assert m.page.inner_text("[data-testid=campaign-status]") == "paused"
    m.button("Resume")
    assert m.page.inner_text("[data-testid=campaign-status]") == "running"

    # KPI report with its three plots
    m.go(f"/console/campaigns/{stack.campaign_id}/report")
    assert "accounts" in m.page.inner_text("[data-testid=kpis]")
    m.page.wait_for_function("() => [...document.images].length === 3 && [...document.images].every(i => i.complete "
                             "&& i.naturalWidth > 0)")
    shot(m, "06-report", tmp_path)

    # transcripts: masked, but amounts are a manager's working data
    m.go("/console/transcript?c=sms:A-1")
    page = content(m)
    assert "Maria" not in page and "[name]" in page and "+1415" not in page and "[phone]" in page
    assert "$210.00" in page
    assert m.page.get_by_role("button", name="Unmask (logged)").count() == 0
    assert m.post("/console/unmask", {"c": "sms:A-1", "reason": "I want to see"}) == 403
    assert m.post("/console/annotate", {"c": "sms:A-1", "label": "ok"}) == 403
    assert m.get_status("/console/export/bundle?c=sms:A-1") == 403
    digest = records(stack, "voice:A-3", "voice_call")[0].payloads["caller_wav"]["sha256"]
    assert m.get_status(f"/console/audio?c=voice:A-3&d={digest}") == 403
    assert m.get_status("/console/users") == 403
    assert m.get_status("/console/access") == 403
    assert m.post("/console/users", {"username": "x", "role": "admin", "password": "0123456789ab"}) == 403


def test_qa_reviewer(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    q = open_browser("quinn")
    assert q.page.url.endswith("/console/transcripts")
    listed = q.page.inner_text("[data-testid=transcripts]")
    assert all(c in listed for c in ("sms:A-1", "sms:A-2", "voice:A-3"))
    shot(q, "07-transcripts", tmp_path)

    def filtered(**params: str) -> set[str]:
        q.go("/console/transcripts?" + "&".join(f"{k}={v}" for k, v in params.items()))
        return set(re.findall(r"(?:sms|voice):A-\d", q.page.inner_text("[data-testid=transcripts]")))

    assert filtered(flag="emotion_escalation") == {"sms:A-2"}
    assert filtered(flag="low_asr_confidence") == {"voice:A-3"}
    assert filtered(flag="opt_out") == {"voice:A-3"}
    assert filtered(flag="dispute") == {"sms:A-2"}
    assert filtered(flag="missing_legal_element") == {"sms:A-2", "voice:A-3"}
    assert filtered(outcome="promise") == {"sms:A-1"}
    assert filtered(campaign=stack.campaign_id) == {"sms:A-1", "sms:A-2", "voice:A-3"}
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    assert filtered(date_to=yesterday) == set()
    assert filtered(date_from=dt.date.today().isoformat(), flag="dispute") == {"sms:A-2"}

    # a transcript: masked, with speakers, times, emotion, confidence and the integrity badge
    q.go("/console/transcript?c=sms:A-1")
    page = content(q)
    name, phone, amount, last4 = PEOPLE["A-1"]
    for secret in ("Maria", "Lopez", phone, "210.00", last4):
        assert secret not in page, secret
    assert "[name]" in page and "[amount]" in page and "[id number]" in page
    assert "neutral 0.10" in page and "debtor" in page
    badge = q.page.locator("[data-testid=integrity]")
    for _ in range(20):  # earlier access records to this conversation wait for the writer's next checkpoint (1 s)
        if "verified" in (badge.get_attribute("class") or ""):
            break
        q.page.wait_for_timeout(500)
        q.go("/console/transcript?c=sms:A-1")
    assert "verified" in badge.get_attribute("class") and "Integrity verified" in badge.inner_text()
    shot(q, "08-transcript-masked", tmp_path)
    wait_until(lambda: any(r.body["user"] == "quinn" and r.body["purpose"] == "view"
                           for r in records(stack, "sms:A-1", "access")))

    # unmask: a logged action with a reason, durable before the data shows
    q.page.fill("#reason", "promise follow-up QA-7")
    q.button("Unmask (logged)")
    page = content(q)
    assert "Maria Lopez" in page and "$210.00" in page and phone in page
    unmasks = [r for r in records(stack, "sms:A-1", "access") if r.body["purpose"] == "unmask"]
    assert unmasks and unmasks[-1].body["user"] == "quinn" and unmasks[-1].body["reason"] == "promise follow-up QA-7"
    # the view after unmasking is recorded as unmasked (submitted without waiting: it reaches the log shortly)
    wait_until(lambda: any(r.body["purpose"] == "view" and r.body["masked"] is False
                           for r in records(stack, "sms:A-1", "access")))

    # annotate: an evidence annotation record, shown on the page
    q.page.select_option("#label", "tone")
    q.page.fill("#turn", "2")
    q.page.fill("#comment", "clear and polite disclosure")
    q.button("Add annotation")
    assert "clear and polite disclosure" in q.page.inner_text("[data-testid=annotations]")
    notes = records(stack, "sms:A-1", "annotation")
    assert notes and notes[-1].body["author"] == "quinn" and notes[-1].body["label"] == "tone"
    assert notes[-1].body["turn_index"] == 2

    # the evidence bundle: exported through the writer, verifiable offline, holding its own access record
    with q.page.expect_download() as download:
        q.page.click("[data-testid=bundle]")
    bundle = tmp_path / "bundle.zip"
    download.value.save_as(bundle)
    errors, summary = verify_bundle(bundle)
    assert errors == [] and summary["conversation_id"] == "sms:A-1"
    assert any(r.body["purpose"] == "export bundle" and r.body["user"] == "quinn"
               for r in records(stack, "sms:A-1", "access"))

    # masked again: the text export is masked too
    q.button("Mask again")
    assert "Maria" not in content(q)
    exported = q.page.evaluate("async () => (await fetch('/console/export/transcript?c=sms%3AA-1')).text()")
    assert "Maria" not in exported and "[name]" in exported and "debtor (sms): [id number]" in exported

    # audio: refused while masked (a voice cannot be masked), served once unmasked
    digest = records(stack, "voice:A-3", "voice_call")[0].payloads["caller_wav"]["sha256"]
    assert q.get_status(f"/console/audio?c=voice:A-3&d={digest}") == 403
    q.go("/console/transcript?c=voice:A-3")
    assert "John" not in content(q) and "0.52" in content(q)
    q.page.fill("#reason", "opt-out check on a call")
    q.button("Unmask (logged)")
    assert "John Carter" in content(q)
    assert q.page.locator("audio").count() == 4  # the call's two sides, each labelled, and each turn's audio
    labels = q.page.inner_text("[data-testid=call-audio]")
    assert "the subscriber's side" in labels and "the assistant's side" in labels
    head = q.page.evaluate("""async (url) => { const r = await fetch(url);
        const b = new Uint8Array(await r.arrayBuffer());
        return [r.status, r.headers.get('content-type'), String.fromCharCode(...b.slice(0, 4))]; }""",
                           f"/console/audio?c=voice%3AA-3&d={digest}")
    assert head == [200, "audio/wav", "RIFF"]
    assert q.page.evaluate("""() => new Promise(ok => { const a = document.querySelector('audio');
        a.addEventListener('loadedmetadata', () => ok(a.duration)); a.load(); })""") == pytest.approx(1.2, abs=0.05)
    shot(q, "09-transcript-unmasked-call", tmp_path)
    wait_until(lambda: any(r.body["purpose"] == "listen" for r in records(stack, "voice:A-3", "access")))

    # what a QA reviewer may not do, asked directly
    assert q.post(f"/console/campaigns/{stack.campaign_id}/pause") == 403
    assert q.get_status(f"/console/campaigns/{stack.campaign_id}/preview") == 403
    assert q.get_status("/console/campaigns/import") == 403
    assert q.get_status("/console/users") == 403
    assert q.get_status("/console/access") == 403
    assert q.post("/console/annotate", {"c": "sms:A-1", "label": "ok"}, csrf=False) == 403


def test_auditor(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    q = open_browser("quinn")
    q.go("/console/transcript?c=sms:A-2")
    q.page.fill("#reason", "dispute review, caller gave +14155550102")
    q.button("Unmask (logged)")

    u = open_browser("audrey")
    u.go("/console/access?user=quinn")
    log_page = u.page.inner_text("[data-testid=access]")
    # the free-text reason is shown masked: a reviewer may have typed personal data into it
    assert "dispute review, caller gave [phone]" in log_page and "unmask" in log_page and "sms:A-2" in log_page
    shot(u, "11-access-log", tmp_path)
    u.go("/console/transcript?c=sms:A-2")
    assert "Wei" not in content(u) and "$580.00" not in content(u)
    assert u.post("/console/unmask", {"c": "sms:A-2", "reason": "audit sample 2026-11"}) in (200, 303, 0)
    u.go("/console/transcript?c=sms:A-2")
    assert "Wei Zhang" in content(u) and "$580.00" in content(u)
    assert u.page.get_by_role("button", name="Add annotation").count() == 0
    assert u.post("/console/annotate", {"c": "sms:A-2", "label": "ok"}) == 403
    assert u.post(f"/console/campaigns/{stack.campaign_id}/cancel") == 403
    assert u.get_status("/console/users") == 403
    assert u.get_status(f"/console/campaigns/{stack.campaign_id}/preview") == 200  # read-only oversight
