"""The console inside the real `duebot serve` web service: a conversation with the real Rasa bot, recorded by
Rasa's event broker through the evidence writer, read in Chromium by a QA reviewer created with the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.console.conftest import Browser
from tests.served import Chat, Served, served_fixture

pytestmark = pytest.mark.browser
served = served_fixture(env={"DUEBOT_EVIDENCE_ASSESS_AFTER": "2"}, test_redis=False)  # serve's own embedded Redis


def test_qa_reads_a_real_conversation(served: Served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chat = Chat(served, "A-1")
    disclosure = chat.verified()
    assert "230.50" in disclosure, chat.transcript
    chat("I will pay on Friday")
    env = {**os.environ, "DUEBOT_DATA_DIR": str(served.data_dir)}
    added = subprocess.run([sys.executable, "-m", "duebot.cli", "console", "user", "add", "rita", "--role",
                            "qa_reviewer", "--password", "rita-pass-1234"], env=env, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    web = served.state()["web"]["url"]
    with sync_playwright() as p:
        b = Browser(p, tmp_path / "profile", web)
        try:
            b.login("rita", "rita-pass-1234")
            link = b.page.get_by_role("link", name=chat.sender)
            for _ in range(60):  # the writer drains the inbox within a second or two
                if link.count():
                    break
                b.page.wait_for_timeout(500)
                b.go("/console/transcripts")
            b.press(link)
            for _ in range(30):  # until a signed checkpoint covers the whole conversation
                if "Integrity verified" in b.page.inner_text("[data-testid=integrity]"):
                    break
                b.page.wait_for_timeout(1000)
                b.page.reload()
            assert "Integrity verified" in b.page.inner_text("[data-testid=integrity]")
            turns = b.page.inner_text("[data-testid=turns]")
            assert "Jane" not in turns and "230.50" not in turns and "[amount]" in turns and "bot" in turns
            b.page.fill("#reason", "end-to-end QA check")
            b.button("Unmask (logged)")
            assert "230.50" in b.page.inner_text("[data-testid=turns]")
        finally:
            b.close()
