"""The web chat page in Chinese and English: ?lang=, else the browser's Accept-Language (zh* → zh-CN), else English;
the page's own words (title, placeholder, send button, "the conversation is closed") come from
channels/chat/static/strings.json, and its switch changes them in place, keeping the conversation on the page. The
assistant's replies are Rasa's: a stand-in answers here. Screenshot: docs/screenshots/15-chat-zh.png."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from duebot.channels.chat import webchat
from tests.channels.conftest import ServerThread

STRINGS = json.loads((Path(webchat.STATIC) / "strings.json").read_text(encoding="utf-8"))
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ["DUEBOT_SCREENSHOTS"]) if os.environ.get("DUEBOT_SCREENSHOTS") else None


class ChineseRasa:
    """Stands in for the Chinese assistant (a RasaClient's ask): the page shows whatever Rasa answers."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def ask(self, sender: str, text: str, account_id: str, channel: str, **_: Any) -> list[dict[str, Any]]:
        self.said.append(text)
        if text == "/greet":
            return [{"text": "您好，这里是 Acme 电信账务中心。为核实身份，请回复您身份证号码的后四位。"}]
        return [{"text": "谢谢，身份已核实。您的欠费为 ¥580.00，请于 12 月 5 日前缴清。",
                 "buttons": [{"title": "现在缴费", "payload": "/pay"}, {"title": "申请分期", "payload": "/plan"}]}]


def app_with(rasa: ChineseRasa) -> FastAPI:
    app = FastAPI()
    app.include_router(webchat.router)
    chat = webchat.ChatChannel(rasa, None)  # type: ignore[arg-type]
    app.dependency_overrides[webchat.get_chat] = lambda: chat
    return app


def page(client: TestClient, token: str, lang: str = "", accept: str = "") -> Any:
    return client.get("/chat", params={"t": token, **({"lang": lang} if lang else {})},
                      headers={"Accept-Language": accept} if accept else {})


def test_the_page_speaks_the_chosen_language() -> None:
    client, token = TestClient(app_with(ChineseRasa())), webchat.make_token("A-1")
    english = page(client, token)
    assert '<html lang="en">' in english.text and ">Account assistant</h1>" in english.text
    assert 'placeholder="Type your message"' in english.text and ">Send</button>" in english.text
    for accept in ("zh-CN,zh;q=0.9,en;q=0.8", "zh-TW", "zh"):
        chinese = page(client, token, accept=accept)
        assert '<html lang="zh-CN">' in chinese.text, accept
    zh = STRINGS["zh-CN"]
    chinese = page(client, token, lang="zh-CN", accept="en-US")  # ?lang= wins over the browser
    assert f">{zh['title']}</h1>" in chinese.text and f'placeholder="{zh["placeholder"]}"' in chinese.text
    assert f">{zh['send']}</button>" in chinese.text and chinese.headers["content-language"] == "zh-CN"
    assert 'data-lang="zh-CN" lang="zh-CN" aria-pressed="true"' in chinese.text
    assert '<html lang="en">' in page(client, token, lang="en", accept="zh-CN").text
    assert '<html lang="en">' in page(client, token, lang="klingon").text
    # every word the script may need, in every language, rides along as data (the CSP allows no inline script)
    embedded = chinese.text.split('id="chat-strings">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == STRINGS
    # the expired link's page too
    expired = client.get("/chat", params={"t": "nonsense", "lang": "zh-CN"})
    assert expired.status_code == 403 and zh["expired_heading"] in expired.text and 'lang="zh-CN"' in expired.text
    assert "Content-Security-Policy" in expired.headers and "http" not in chinese.text.split("<body>")[1]


@pytest.mark.browser
def test_the_chat_in_chinese_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    rasa = ChineseRasa()
    zh, en = STRINGS["zh-CN"], STRINGS["en"]
    with ServerThread(app_with(rasa)) as server, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       args=FLAGS, viewport={"width": 390, "height": 844},
                                                       locale="zh-CN")
        try:
            page_ = browser.pages[0] if browser.pages else browser.new_page()  # a phone, in Chinese
            # a link that expires seconds after it is opened: then the page says the conversation is closed
            opened = time.time()
            token = webchat.make_token("A-2", ttl_hours=10 / 3600)
            page_.goto(f"{server.url}/chat?t={token}")
            log = page_.get_by_role("log")
            expect(log).to_contain_text("身份证号码的后四位", timeout=20_000)
            assert page_.evaluate("document.documentElement.lang") == "zh-CN"
            assert page_.title() == zh["title"] and "?t=" not in page_.url
            box = page_.get_by_label(zh["message_label"])
            assert box.get_attribute("placeholder") == zh["placeholder"]
            box.fill("1188")
            page_.get_by_role("button", name=zh["send"]).click()
            expect(log).to_contain_text("¥580.00", timeout=20_000)
            expect(page_.get_by_role("button", name="现在缴费")).to_be_visible()
            page_.screenshot(path=str((SHOTS or tmp_path) / "15-chat-zh.png"), full_page=False)

            # the switch: English words in place, the conversation stays; and back
            page_.get_by_role("button", name="EN", exact=True).click()
            assert page_.evaluate("document.documentElement.lang") == "en" and page_.title() == en["title"]
            assert page_.get_by_label(en["message_label"]).get_attribute("placeholder") == en["placeholder"]
            assert "¥580.00" in log.inner_text() and page_.url.endswith("/chat?lang=en")
            page_.get_by_role("button", name="中文", exact=True).click()
            assert page_.get_by_role("button", name=zh["send"]).is_visible()

            # the link has expired since: the next message gets the closed conversation's words, in Chinese
            time.sleep(max(0.0, opened + 11.5 - time.time()))
            box.fill("还在吗")
            page_.get_by_role("button", name=zh["send"]).click()
            closed = page_.locator("[data-testid=chat-closed]")
            expect(closed).to_have_text(zh["closed"], timeout=20_000)
            assert box.is_disabled()
        finally:
            browser.close()
    assert rasa.said == ["/greet", "1188"]  # what came after the link expired never reached the assistant
