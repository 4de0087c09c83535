"""Console polish (issue 21) over the real web app with a real Redis, the SQLite account store and a real evidence
log drained by its single writer: the access log names every actor's role (console and command line), viewing a
conversation does not reorder the transcript list, report plots are drawn again only when their figures change,
a call's recordings are labelled, error pages keep the menu, and disabling a user asks first and never leaves the
console without an active admin."""

from __future__ import annotations

import hashlib
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duebot.console import plots
from duebot.console.users import UserError, Users
from duebot.evidence.cli import app as evidence_cli
from duebot.evidence.inbox import EvidenceInbox
from duebot.evidence.log import EvidenceLog
from tests.console.conftest import CONVERSATION, Site, accounts_csv, csrf_of, login, tone_wav, wait_until


def rows_of(html: str, testid: str) -> list[list[str]]:
    """The cells of a table's body rows, as text."""
    table = re.search(rf'data-testid="{testid}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert table, f"no table {testid}"
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]


def logged_in(site: Site, user: str, lang: str | None = None):  # noqa: ANN201 - a TestClient
    b = site.client()
    if lang:
        b.cookies.set("duebot_lang", lang, path="/console")
    assert login(b, user).status_code == 303
    return b


def in_log(site: Site, conversation: str, predicate) -> bool:  # noqa: ANN001
    """Whether the console's own snapshot of the log (what its pages read) holds a matching record yet."""
    log = site.console.reader.log()
    return log is not None and any(predicate(r) for r in log.records_for(conversation))


def submit_turn(site: Site, conversation: str, text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    EvidenceInbox(site.console.client).submit(
        "turn", {"speaker": "debtor", "channel": "sms", "started_at": stamp, "ended_at": stamp},
        conversation_id=conversation, payloads={"text": text.encode()})


# ------------------------------------------------------------------------------------ (a) roles in the access log


def test_the_access_log_names_the_role_of_annotations_and_command_line_exports(site: Site) -> None:
    q = logged_in(site, "quinn")
    csrf = csrf_of(q.get(f"/console/transcript?c={CONVERSATION}").text)
    assert q.post("/console/annotate", data={"c": CONVERSATION, "label": "tone", "csrf_token": csrf}).status_code == 303
    # an export made on the command line, as `duebot evidence export` records it (see the CLI test below)
    EvidenceInbox(site.console.client).submit("access", {"user": "root", "purpose": "export", "role": "cli",
                                                         "via": "cli"}, conversation_id=CONVERSATION)
    wait_until(lambda: in_log(site, CONVERSATION, lambda r: r.body.get("via") == "cli"))
    note = next(r for r in site.console.reader.log().records_for(CONVERSATION) if r.kind == "annotation")
    assert note.body["role"] == "qa_reviewer" and note.body["author"] == "quinn"

    rows = rows_of(logged_in(site, "audrey").get("/console/access").text, "access")
    # Time, User, Role, Via, Record, What, Reason, Conversation, Log index
    annotation = next(r for r in rows if r[4] == "annotation")
    assert annotation[1:4] == ["quinn", "qa_reviewer", "console"] and annotation[5] == "tone"
    export = next(r for r in rows if r[5] == "export")
    assert export[1:5] == ["root", "cli", "cli", "access"]
    assert all(r[2] for r in rows)  # no blank role


def test_a_command_line_export_records_the_cli_role(tmp_path: Path) -> None:
    with EvidenceLog.open(tmp_path / "ev") as log:
        log.append("turn", {"speaker": "bot", "channel": "sms", "started_at": "t", "ended_at": "t"},
                   {"text": b"hello"}, conversation_id="sms:Z-1")
    runner = CliRunner()
    named = runner.invoke(evidence_cli, ["export", "sms:Z-1", "--out", str(tmp_path / "a.zip"), "--dir",
                                         str(tmp_path / "ev"), "--user", "ops.li", "--purpose", "court order"])
    assert named.exit_code == 0, named.output
    unnamed = runner.invoke(evidence_cli, ["export", "sms:Z-1", "--out", str(tmp_path / "b.zip"), "--dir",
                                           str(tmp_path / "ev")])
    assert unnamed.exit_code == 0, unnamed.output
    with EvidenceLog.open(tmp_path / "ev", readonly=True) as log:
        accesses = [r.body for r in log.records_for("sms:Z-1") if r.kind == "access"]
    assert accesses[0] == {"user": "ops.li", "purpose": "court order", "role": "cli", "via": "cli"}
    assert accesses[1]["role"] == "cli" and accesses[1]["via"] == "cli" and accesses[1]["user"]  # the login name


# ------------------------------------------------------------------------------------ (b) the transcript list order


def test_viewing_a_conversation_does_not_move_it_up_the_list(site: Site) -> None:
    submit_turn(site, "sms:A-2", "a later conversation")
    wait_until(lambda: in_log(site, "sms:A-2", lambda r: r.kind == "turn"))
    q = logged_in(site, "quinn")

    def listed() -> list[tuple[str, str]]:
        return [(r[0], r[6]) for r in rows_of(q.get("/console/transcripts").text, "transcripts")]

    before = listed()
    assert [c for c, _ in before] == ["sms:A-2", CONVERSATION]
    assert q.get(f"/console/transcript?c={CONVERSATION}").status_code == 200  # an access record, newer than both
    q.get("/console/export/transcript", params={"c": CONVERSATION})  # and another
    wait_until(lambda: len([r for r in site.console.reader.log().records_for(CONVERSATION)
                            if r.kind == "access"]) == 2)
    assert listed() == before  # same order, same "last conversation record" times
    # the date filter reads the same time: the conversation's, not the last reader's
    day = before[1][1][:10]
    assert CONVERSATION in [r[0] for r in rows_of(q.get(f"/console/transcripts?date_to={day}").text, "transcripts")]


# ------------------------------------------------------------------------------------ (c) plots drawn once per figures


def test_report_plots_are_drawn_again_only_when_their_figures_change(site: Site) -> None:
    campaign = site.console.campaigns.import_file(accounts_csv(site.tmp / "polish.csv", extra=2), "demo",
                                                  "Polish").campaign_id
    a = logged_in(site, "ada")
    folder = site.console.data_dir / "reports" / campaign

    def view() -> tuple[int, dict[str, int]]:
        before = plots.draws
        assert a.get(f"/console/campaigns/{campaign}/report").status_code == 200
        for name in ("funnel", "segments", "time"):
            assert a.get(f"/console/campaigns/{campaign}/report/{name}.png").status_code == 200
        return plots.draws - before, {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}

    drawn, first = view()
    assert drawn == 1 and len(first) == 3
    drawn, again = view()
    assert drawn == 0 and again == first  # the same figures: the same files, not drawn again
    site.store.record_payment("A-1", Decimal("210.00"), "polish-pay-1")
    drawn, after = view()
    assert drawn == 1 and all(after[n] != first[n] for n in first)  # a payment changed the figures
    assert "paid_accounts,1" in a.get(f"/console/campaigns/{campaign}/kpis.csv").text  # the CSV of the same figures

    # the money KPI page the same way
    def kpis() -> int:
        before = plots.draws
        assert a.get("/console/kpis?period=month").status_code == 200
        return plots.draws - before

    assert kpis() == 1 and kpis() == 0
    site.store.record_payment("A-2", Decimal("80.00"), "polish-pay-2")
    assert kpis() == 1
    json_report = a.get("/console/kpis/report.json?period=month").json()
    assert json_report["period"] == "month" and "recovery_png" in json_report["files"]


# ------------------------------------------------------------------------------------ (d) a call's recordings


def test_the_recordings_of_a_call_say_which_side_they_are(site: Site) -> None:
    conversation = "voice:A-1"
    caller, bot = tone_wav(0.4, hz=500), tone_wav(0.4, hz=300)
    inbox = EvidenceInbox(site.console.client)
    inbox.submit("turn", {"speaker": "bot", "channel": "voice", "started_at": "2026-11-24T14:00:00Z",
                          "ended_at": "2026-11-24T14:00:01Z"}, conversation_id=conversation,
                 payloads={"text": b"Am I speaking with Maria Lopez?"})
    inbox.submit("voice_call", {"call_id": "call-9", "sender": conversation}, conversation_id=conversation,
                 payloads={"caller_wav": caller, "bot_wav": bot})
    wait_until(lambda: in_log(site, conversation, lambda r: r.kind == "voice_call"))
    q = logged_in(site, "quinn")
    csrf = csrf_of(q.get(f"/console/transcript?c={conversation}").text)
    assert q.post("/console/unmask", data={"c": conversation, "reason": "call QA sample",
                                           "csrf_token": csrf}).status_code == 303
    page = q.get(f"/console/transcript?c={conversation}").text
    recordings = re.findall(r'<span id="(call-audio-\d)">(.*?)</span>\s*<audio [^>]*aria-labelledby="(call-audio-\d)" '
                            r'src="[^"]*d=(\w+)"', page)
    assert [(label, digest) for _, label, _, digest in recordings] == [
        ("Whole call, the subscriber's side", hashlib.sha256(caller).hexdigest()),
        ("Whole call, the assistant's side", hashlib.sha256(bot).hexdigest())]
    assert all(span == ref for span, _, ref, _ in recordings)  # each player is named by its label
    q.cookies.set("duebot_lang", "zh-CN", path="/console")
    page = q.get(f"/console/transcript?c={conversation}").text
    assert "整通电话，用户一方" in page and "整通电话，助手一方" in page


# ------------------------------------------------------------------------------------ (e) error pages keep the menu


def test_an_error_page_keeps_the_menu_of_a_logged_in_user(site: Site) -> None:
    a = logged_in(site, "ada")
    refused = a.get("/console/transcripts")
    assert refused.status_code == 403 and 'data-testid="error"' in refused.text
    assert '<nav aria-label="Main">' in refused.text and 'href="/console/users"' in refused.text
    assert 'data-testid="whoami">ada' in refused.text and "Log out" in refused.text
    assert "may not browse and read transcripts (masked)" in refused.text
    missing = a.get("/console/campaigns/C-none")
    assert missing.status_code == 404 and '<nav aria-label="Main">' in missing.text
    a.cookies.set("duebot_lang", "zh-CN", path="/console")
    refused = a.get("/console/transcripts")
    assert '<html lang="zh-CN">' in refused.text and "无权访问" in refused.text
    assert "您的角色（管理员）无权浏览和阅读对话记录（已遮蔽）" in refused.text and "用户" in refused.text
    # nobody logged in: no menu, a way to log in
    anonymous = site.client().get("/console/no-such-page")
    assert anonymous.status_code == 404 and "<nav" not in anonymous.text and 'href="/console/login"' in anonymous.text


# ------------------------------------------------------------------------------------ (f) disabling a user


def test_disabling_a_user_asks_first(site: Site) -> None:
    a = logged_in(site, "ada")
    q = logged_in(site, "quinn")
    csrf = csrf_of(a.get("/console/users").text)
    asked = a.post("/console/users/quinn/disable", data={"csrf_token": csrf})
    assert asked.status_code == 200 and 'data-testid="confirm-disable"' in asked.text
    assert "Disable quinn?" in asked.text and 'name="confirm" value="yes"' in asked.text
    assert site.console.users.get("quinn").active  # nothing happened yet
    assert q.get("/console/transcripts").status_code == 200
    done = a.post("/console/users/quinn/disable", data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/console/users?done=disable&u=quinn"
    assert not site.console.users.get("quinn").active
    assert q.get("/console/transcripts").status_code == 303  # logged out at once
    assert "disable: quinn" in a.get(done.headers["location"]).text


def test_the_last_admin_cannot_disable_themselves(site: Site) -> None:
    a = logged_in(site, "ada")
    csrf = csrf_of(a.get("/console/users").text)
    refused = a.post("/console/users/ada/disable", data={"csrf_token": csrf, "confirm": "yes"})
    assert refused.status_code == 422 and "ada is the last active admin" in refused.text
    assert site.console.users.get("ada").active
    with pytest.raises(UserError, match="last active admin"):  # the command line too
        Users(site.store).set_active("ada", False)

    Users(site.store).add("ada2", "admin", "second-admin-1")  # with another admin, after a confirmation
    asked = a.post("/console/users/ada/disable", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "This is your own account" in asked.text
    done = a.post("/console/users/ada/disable", data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/console/login"
    assert not site.console.users.get("ada").active
    assert a.get("/console/users").status_code == 303  # the session ended
    b = site.client()
    assert login(b, "ada2", "second-admin-1").status_code == 303
    csrf = csrf_of(b.get("/console/users").text)
    assert b.post("/console/users/ada2/disable", data={"csrf_token": csrf, "confirm": "yes"}).status_code == 422
