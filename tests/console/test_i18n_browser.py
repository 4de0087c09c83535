"""The console in Chinese and in English in real headless Chromium: the browser's language picks the first page's,
the menu's EN / 中文 switch changes it and is remembered (through a login too), Chinese text renders with a CJK
font, and masking applies in both. Screenshots: docs/screenshots/13-console-zh.png and 14-console-en.png."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.console.conftest import PEOPLE, Browser, Stack

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ["DUEBOT_SCREENSHOTS"]) if os.environ.get("DUEBOT_SCREENSHOTS") else None


def shot(b: Browser, name: str, tmp_path: Path) -> None:
    width = b.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{name}: page is {width} px wide"
    b.page.screenshot(path=str((SHOTS or tmp_path) / f"{name}.png"), full_page=False)


def lang(b: Browser) -> str:
    return b.page.evaluate("document.documentElement.lang")


def switch(b: Browser, name: str) -> None:
    b.press(b.page.locator("[data-testid=lang-switch]").get_by_role("button", name=name, exact=True))


def cjk_font_installed() -> bool:
    found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


def glyphs_render(b: Browser, text: str) -> bool:
    """Whether the page's font draws `text` with real glyphs: without a CJK font every character is the same
    empty box, so the drawings of two different characters would be identical."""
    return b.page.evaluate("""([a, b]) => {
        const family = getComputedStyle(document.body).fontFamily;
        const draw = (ch) => { const c = document.createElement('canvas'); c.width = 40; c.height = 40;
            const x = c.getContext('2d'); x.font = '32px ' + family; x.fillText(ch, 2, 32);
            return c.toDataURL(); };
        return draw(a) !== draw(b); }""", list(text[:2]))


def test_the_console_in_chinese_and_in_english(stack: Stack, open_browser, tmp_path: Path) -> None:  # noqa: ANN001
    assert cjk_font_installed(), "no CJK font: apt-get install fonts-noto-cjk"
    name, phone, _, _ = PEOPLE["A-1"]

    # a browser that prefers Chinese gets the login page in Chinese
    zh = open_browser(locale="zh-CN")
    zh.go("/console/login")
    assert lang(zh) == "zh-CN" and zh.page.inner_text("main h1") == "登录"
    assert glyphs_render(zh, "登录"), "Chinese text renders as boxes"
    zh.login("quinn")
    assert zh.page.url.endswith("/console/transcripts")
    nav = zh.page.inner_text("nav")
    assert "对话记录" in nav and "Transcripts" not in nav
    assert zh.page.inner_text("[data-testid=count]").endswith("个会话")
    assert "质检员" in zh.page.inner_text("[data-testid=whoami]")
    zh.go("/console/transcript?c=sms:A-1")
    page = zh.page.inner_text("main")
    assert "个人信息已遮蔽" in zh.page.inner_text("[data-testid=mask-state]")
    assert "[name]" in page and "Maria" not in page and phone not in page  # masked in Chinese as in English
    assert "说话人" in page and "欠费用户" in page
    shot(zh, "13-console-zh", tmp_path)

    # the switch: the same page in English, and it stays English
    switch(zh, "EN")
    assert zh.page.url.endswith("/console/transcript?c=sms:A-1") and lang(zh) == "en"
    assert zh.page.inner_text("[data-testid=mask-state]") == "Personal data masked"
    assert "Maria" not in zh.page.inner_text("main")
    shot(zh, "14-console-en", tmp_path)
    zh.go("/console/transcripts")  # the browser still prefers Chinese: the saved choice wins
    assert lang(zh) == "en" and "Transcripts" in zh.page.inner_text("nav")

    # a browser that prefers English, switched to Chinese before logging in: kept through the login
    en = open_browser(locale="en-US")
    en.go("/console/login")
    assert lang(en) == "en" and en.page.inner_text("main h1") == "Log in"
    switch(en, "中文")
    assert lang(en) == "zh-CN" and en.page.inner_text("main h1") == "登录"
    en.login("audrey")
    assert lang(en) == "zh-CN" and "审计员" in en.page.inner_text("[data-testid=whoami]")
    en.go("/console/access")
    assert en.page.inner_text("main h1") == "访问日志"
    en.go("/console/users")  # an error page in Chinese, with the menu
    assert en.page.inner_text("main h1") == "无权访问" and "访问日志" in en.page.inner_text("nav")
    switch(en, "EN")
    assert en.page.inner_text("main h1") == "Not allowed" and "Access log" in en.page.inner_text("nav")
