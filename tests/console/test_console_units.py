"""Masking, the integrity badge's check, users and lock-out, sessions: the parts under the pages."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from duebot.accounts.store import AccountStore
from duebot.console.evidence_view import check_integrity
from duebot.console.masking import Known, Masker, console_logger
from duebot.console.roles import MATRIX, Perm, Role, allowed
from duebot.console.sessions import Sessions
from duebot.console.users import MAX_FAILURES, Users
from duebot.evidence.log import EvidenceLog
from duebot.settings import RedisAddress

ACCOUNT = SimpleNamespace(name="Maria Lopez", phone="+14155550101", id_last4="4472",
                          birth_date=dt.date(1980, 3, 4), amount_due=Decimal("1210.00"))


def test_masking_by_category_and_known_values() -> None:
    line = "Maria, you owe $1,210.00 (1210) on +1 415 555 0101; ID 4472, born 1980-03-04, due 2026-12-05."
    hidden = Masker(frozenset(), Known.of_account(ACCOUNT)).text(line)
    assert hidden == ("[name], you owe [amount] ([amount]) on [phone]; ID [id number], born [id number], "
                      "due 2026-12-05.")
    manager = Masker(frozenset({"amount"}), Known.of_account(ACCOUNT)).text(line)
    assert "$1,210.00" in manager and "Maria" not in manager and "4472" not in manager
    assert Masker(frozenset({"name", "id_number", "phone", "amount"})).text(line) == line
    # what the store does not know is caught by patterns
    free = Masker.everything().text("my name is Tom Baker, call 13812345678 or (212) 555-0199 about 80 yuan")
    assert free == "my name is [name], call [phone] or [phone] about [amount]"
    assert Masker.everything().value("phone", "+14155550101") == "[phone]"
    assert Masker(frozenset({"phone"})).value("phone", "+14155550101") == "+14155550101"


def test_console_log_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    log = console_logger()
    with caplog.at_level(logging.INFO, logger="duebot.console"):
        log.info("import refused: phone: not a valid number (%r) for %s", "+1 415 555 01", "owes $99.50")
    assert caplog.messages == ["import refused: phone: not a valid number ('[phone]') for owes [amount]"]


def test_role_matrix_least_privilege() -> None:
    assert not allowed(Role.ADMIN, Perm.TRANSCRIPT_VIEW) and allowed(Role.ADMIN, Perm.USERS)
    assert not allowed(Role.CAMPAIGN_MANAGER, Perm.UNMASK) and allowed(Role.CAMPAIGN_MANAGER, Perm.CAMPAIGN_CONTROL)
    assert allowed(Role.QA_REVIEWER, Perm.ANNOTATE) and not allowed(Role.AUDITOR, Perm.ANNOTATE)
    # only roles that may unmask get raw audio or a bundle (both hold unmasked personal data)
    assert MATRIX[Perm.AUDIO] == MATRIX[Perm.BUNDLE] == MATRIX[Perm.UNMASK]


def test_integrity_check_detects_a_changed_record(tmp_path: Path) -> None:
    with EvidenceLog.open(tmp_path / "ev") as log:
        for n in range(5):
            log.append("turn", {"speaker": "bot", "channel": "sms", "started_at": "t", "ended_at": "t"},
                       {"text": f"line {n}".encode()}, conversation_id="c1")
        log.checkpoint()
        log.append("outcome", {"type": "promise"}, conversation_id="c1")
    log = EvidenceLog.open(tmp_path / "ev", readonly=True)
    recs = log.records_for("c1")
    good = check_integrity(log, recs)  # close() signed a checkpoint over the last record too
    assert good.state == "verified" and good.checked == 6 and good.checkpoint.size == 6
    forged = replace(recs[2], data=recs[2].data.replace(b'"bot"', b'"agent"'))
    bad = check_integrity(log, [recs[0], forged])
    assert bad.state == "failed" and f"record {recs[2].index}" in bad.label


def test_lockout_and_unlock(tmp_path: Path) -> None:
    now = [1000.0]
    users = Users(AccountStore(f"sqlite:///{tmp_path / 'db.sqlite3'}"), clock=lambda: now[0])
    users.add("qa1", "qa_reviewer", "long-enough-1")
    for _ in range(MAX_FAILURES - 1):
        assert users.login("qa1", "nope").error == "Wrong user name or password."
    assert "locked for 15 minutes" in users.login("qa1", "nope").error
    assert users.login("qa1", "long-enough-1").user is None
    now[0] += 15 * 60 + 1  # the lock expires by itself
    assert users.login("qa1", "long-enough-1").user.role is Role.QA_REVIEWER
    assert users.login("ghost", "whatever-123").error == "Wrong user name or password."  # same answer
    with pytest.raises(ValueError, match="at least 10"):
        users.add("short", "auditor", "123")
    with pytest.raises(ValueError, match="role must be"):
        users.add("who", "root", "long-enough-1")


def test_sessions_rotate_and_expire_unmask(redis_address: RedisAddress) -> None:
    # its own database: the browser tests' stack shares this Redis server and must not be flushed
    redis_client = redis.Redis(host=redis_address.host, port=redis_address.port, db=5)
    redis_client.flushdb()
    sessions = Sessions(redis_client)
    anon = sessions.new()
    user = sessions.new("qa1")
    assert anon.token != user.token and sessions.get(user.token).username == "qa1"
    assert sessions.get(anon.token).username is None
    assert user.csrf_ok(user.csrf) and not user.csrf_ok(anon.csrf) and not user.csrf_ok(None)
    # the Redis key is a hash of the token: the token itself is never stored
    assert not any(user.token.encode() in key for key in redis_client.keys("*"))
    sessions.grant_unmask(user, "sms:A-1")
    assert sessions.unmasked(user, "sms:A-1") and not sessions.unmasked(user, "sms:A-2")
    assert 0 < redis_client.ttl(f"duebot:console:unmask:{user.sid}:sms:A-1") <= 15 * 60
    assert sessions.end_user("qa1") == 1 and sessions.get(user.token) is None


def test_log_reader_serves_a_snapshot_and_refreshes_it_in_the_background(tmp_path: Path) -> None:
    from duebot.console.evidence_view import LogReader

    reader = LogReader(tmp_path / "ev")
    assert reader.log() is None  # no log yet: the pages say so instead of failing
    body = {"speaker": "bot", "channel": "sms", "started_at": "t", "ended_at": "t"}
    with EvidenceLog.open(tmp_path / "ev") as log:
        log.append("turn", body, conversation_id="c1")
        first = reader.log()
        assert first is not None and first.size == 1
        log.append("turn", body, conversation_id="c1")
        deadline = time.monotonic() + 10
        while reader.log().size < 2:  # the request path never blocks on the reopen
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert len(reader.log().records_for("c1")) == 2


def test_console_user_commands_and_their_refusals(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DUEBOT_DB_URL", "REDIS_URL")}  # not another test's
    env["DUEBOT_DATA_DIR"] = str(tmp_path)

    def duebot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "duebot.cli", "console", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    added = duebot("user", "add", "quinn", "--role", "qa_reviewer", "--password", "correct horse battery")
    assert added.returncode == 0 and "added quinn (qa_reviewer)" in added.stdout, added.stderr
    again = duebot("user", "add", "quinn", "--role", "auditor", "--password", "correct horse battery")
    assert again.returncode == 2 and "exists" in again.stderr
    short = duebot("user", "add", "sam", "--role", "auditor", "--password", "short")
    assert short.returncode == 2 and "at least" in short.stderr
    assert duebot("user", "disable", "quinn").returncode == 0
    listed = duebot("user", "list")
    assert "quinn" in listed.stdout and "disabled" in listed.stdout and "sam" not in listed.stdout
    unknown = duebot("user", "unlock", "nobody")
    assert unknown.returncode == 2 and "no user" in unknown.stderr


def test_the_docs_role_matrix_is_the_one_the_server_checks() -> None:
    from pathlib import Path

    from duebot.console.roles import matrix_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "console.md").read_text(encoding="utf-8")
    assert matrix_markdown().strip() in doc, "regenerate: duebot console roles"
