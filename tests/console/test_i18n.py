"""The console's and the web chat's languages (zh-CN and en), without a browser: every user-visible string of every
template goes through the catalogue, the Chinese catalogue has every message (and keeps each one's placeholders),
the language is the saved choice, else the browser's, else English, and the pages say which in <html lang>."""

from __future__ import annotations

import ast
import html.parser
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import nodes

from duebot.campaigns import kpis as k
from duebot.campaigns import money
from duebot.campaigns.report import MONEY_TABLES
from duebot.console import i18n
from duebot.console.context import templates
from duebot.console.i18n import Msg
from duebot.console.roles import Perm, Role
from duebot.evidence.records import OUTCOME_TYPES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "console" / "templates"
CHAT = ROOT / "channels" / "chat" / "static"
ENV = templates.env
# Attributes a person reads (or hears from a screen reader).
VISIBLE_ATTRIBUTES = ("title", "alt", "placeholder", "aria-label", "data-confirm", "label")
GETTEXT = ("_", "gettext", "ngettext")


# ------------------------------------------------------------------------------------ what the pages show


class _Text(html.parser.HTMLParser):
    """Text nodes and visible attributes of an HTML document (without scripts and styles)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.found += [value for name, value in attrs if name in VISIBLE_ATTRIBUTES and value]
        if tag == "input" and dict(attrs).get("type") in ("submit", "button"):
            self.found.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


NAMES = re.compile(r"\bduebot\b")  # the product's name is the same in every language


def words(text: str) -> bool:
    """Whether a piece of page text says something in a language (letters, Latin or Chinese), names aside."""
    return any(ch.isalpha() for ch in NAMES.sub("", text))


JINJA = re.compile(r"\{#.*?#\}|\{%-?\s*trans\b.*?endtrans\s*-?%\}|\{\{.*?\}\}|\{%.*?%\}", re.S)


def untranslated_markup(source: str) -> list[str]:
    """Page text that is written in the template itself, outside {% trans %} and _(): each Jinja construct becomes a
    mark (an expression, a translated message) or nothing (a statement), and what is left is read as HTML."""
    skeleton = JINJA.sub(lambda m: "" if m.group().startswith(("{%", "{#")) and "trans" not in m.group()[:12]
                         else "\u2063", source)
    parser = _Text()
    parser.feed(skeleton)
    return [t.strip() for t in parser.found if words(t.replace("\u2063", ""))]


def _shown_constants(node: nodes.Node) -> Iterator[str]:
    """String literals an output expression prints as they are (not the arguments of _(), of a filter or a test)."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, nodes.CondExpr):
        yield from _shown_constants(node.expr1)
        if node.expr2 is not None:
            yield from _shown_constants(node.expr2)
    elif isinstance(node, nodes.Concat):
        for part in node.nodes:
            yield from _shown_constants(part)
    elif isinstance(node, nodes.Filter) and node.name in ("capitalize", "upper", "lower", "title", "e", "trim"):
        yield from _shown_constants(node.node)


def untranslated_literals(source: str) -> list[str]:
    tree = ENV.parse(source)
    found = []
    for output in tree.find_all(nodes.Output):
        for child in output.nodes:
            if not isinstance(child, nodes.TemplateData):
                found += [c for c in _shown_constants(child) if words(c)]
    return found


def template_messages() -> set[str]:
    out: set[str] = set()
    for path in sorted(TEMPLATES.glob("*.html")):
        for _, _, message in ENV.extract_translations(path.read_text(encoding="utf-8"), GETTEXT):
            out.update(m for m in (message if isinstance(message, tuple) else (message,)) if m)
    return out


def python_messages() -> set[str]:
    """First arguments of Msg(…) and N_(…) in the console's code."""
    out: set[str] = set()
    for path in sorted((ROOT / "console").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("Msg", "N_") and isinstance(node.args[0].value, str):
                    out.add(node.args[0].value)
    return out


def data_words() -> set[str]:
    """Words the pages show from data and translate with |t: roles, permissions, outcomes, KPI names and labels."""
    empty = k.CampaignData({}, [], [], set(), set(), {}, set(), 0, None)
    return ({r.value for r in Role} | {p.value for p in Perm} | set(OUTCOME_TYPES)
            | {key.replace("_", " ") for key, v in k.compute(empty).items() if not isinstance(v, dict)}
            | {name for name, _ in k.funnel(empty)} | {t.replace("_", " ") for t in MONEY_TABLES}
            | set(money.GROUPINGS) | set(money.PERIODS)
            | {t.label for t in money.load_targets(money.TARGETS_FILE).kpis.values()})


def every_message() -> set[str]:
    return template_messages() | python_messages() | data_words()


# ------------------------------------------------------------------------------------ the templates


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_no_template_shows_an_untranslated_string(name: str) -> None:
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    assert untranslated_markup(source) == [], f"{name}: put these in {{% trans %}} or _()"
    assert untranslated_literals(source) == [], f"{name}: string literals printed untranslated"


def test_the_scan_finds_what_it_should() -> None:
    # the scan itself: text, visible attributes and printed literals are caught, translated ones are not
    assert untranslated_markup('<p>Hello <b>{{ name }}</b></p>') == ["Hello"]
    assert untranslated_markup('<input placeholder="new password">') == ["new password"]
    assert untranslated_markup('<p>{% trans %}Hello{% endtrans %} · {{ _("World") }} {{ n }}%</p>') == []
    assert untranslated_markup('<img alt="{% trans %}plot{% endtrans %}">') == []
    assert untranslated_literals('{{ "allowed" if ok else "refused" }}') == ["allowed", "refused"]
    assert untranslated_literals('{{ _("allowed") if ok else "—" }} {{ v|join(", ") }} {{ "%.1f%%"|format(v) }}') == []


def test_the_chinese_catalogue_has_every_message_with_its_placeholders() -> None:
    zh = i18n.catalogue(i18n.ZH)
    needed = every_message()
    missing = sorted(needed - zh.keys())
    assert missing == [], f"add to console/locales/zh_CN.yml: {missing}"
    assert not [m for m in needed if not zh[m].strip()], "empty translations"
    broken = {m: zh[m] for m in needed if i18n.placeholders(m) != i18n.placeholders(zh[m])}
    assert broken == {}, "a translation must keep its message's placeholders"
    assert sorted(set(zh) - needed) == [], "messages no page or code uses any more: remove them"
    for m in needed:  # new-style gettext formats every message: a literal % is written %%
        if "%(" in m or m in template_messages():
            assert re.sub(r"%%|%\(\w+\)[sd]", "", zh[m]).count("%") == 0, m


def test_english_is_the_message_itself() -> None:
    assert i18n.catalogue(i18n.EN) == {}
    assert i18n.translate("running", "en") == "running" and i18n.translate("running", "zh-CN") == "进行中"
    message = Msg("no campaign {campaign!r}", campaign="C-9")
    assert message == "no campaign 'C-9'" and isinstance(message, str)
    assert message.translated("zh-CN") == "没有活动 'C-9'"
    nested = Msg("your role ({role}) may not {perm}", role=Msg("auditor"), perm=Msg(Perm.USERS.value))
    assert nested == "your role (auditor) may not manage users"
    assert nested.translated("zh-CN") == "您的角色（审计员）无权管理用户"
    assert i18n.translate("what a subscriber said", "zh-CN") == "what a subscriber said"


# ------------------------------------------------------------------------------------ choosing the language


@pytest.mark.parametrize(("saved", "header", "expected"), [
    (None, None, "en"),
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
    (None, "zh-TW", "zh-CN"),
    (None, "zh", "zh-CN"),
    (None, "en-GB,en;q=0.9,zh-CN;q=0.8", "en"),
    (None, "fr-FR, de;q=0.9, zh-Hans;q=0.5", "zh-CN"),  # the first served language the browser accepts
    (None, "en;q=0.3, zh;q=0.8", "zh-CN"),  # by weight, not by order
    (None, "zh;q=0, fr", "en"),  # q=0: not acceptable
    (None, "fr-FR", "en"),
    ("en", "zh-CN,zh;q=0.9", "en"),  # the saved choice wins
    ("zh-CN", "en-US", "zh-CN"),
    ("klingon", "zh-CN", "zh-CN"),  # a cookie naming no language is ignored
])
def test_the_language_is_the_saved_choice_else_the_browsers_else_english(saved, header, expected) -> None:  # noqa: ANN001
    assert i18n.choose(saved, header) == expected


# ------------------------------------------------------------------------------------ the web chat's words


def chat_strings() -> dict[str, dict[str, str]]:
    return json.loads((CHAT / "strings.json").read_text(encoding="utf-8"))


def test_the_chat_has_every_word_in_both_languages() -> None:
    strings = chat_strings()
    assert set(strings) == {"en", "zh-CN"}
    assert strings["en"].keys() == strings["zh-CN"].keys()
    assert all(v.strip() for lang in strings.values() for v in lang.values())
    assert all(re.search(r"[\u4e00-\u9fff]", v) for v in strings["zh-CN"].values())
    used = set()
    for name in ("index.html", "expired.html"):
        source = (CHAT / name).read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\.(\w+)", source)) | set(re.findall(r'data-i18n(?:-[\w-]+)?="(\w+)"', source))
        # nothing the page shows is written in the template itself: the words come from strings.json
        assert untranslated_markup(source) == [], name
    script = (CHAT / "chat.js").read_text(encoding="utf-8")
    used |= set(re.findall(r'\bs\("(\w+)"\)', script)) | set(re.findall(r'problem\("(\w+)"\)', script))
    used |= {"closed", "too_fast", "unavailable", "error"}  # chosen by status code
    assert used - strings["en"].keys() == set()
    assert strings["en"].keys() - used == set(), "words no page uses"


# ------------------------------------------------------------------------------------ the pages (no browser)


def test_pages_follow_the_browser_then_the_saved_choice(site) -> None:  # noqa: ANN001 - a conftest Site
    from tests.console.conftest import CONVERSATION, csrf_of, login

    b = site.client()
    english = b.get("/console/login")
    assert '<html lang="en">' in english.text and "<h1>Log in</h1>" in english.text
    chinese = b.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in chinese.text and "<h1>登录</h1>" in chinese.text and "用户名" in chinese.text
    assert 'lang="zh-CN" class="link" aria-pressed="true">中文</button>' in chinese.text  # the switch says which

    # the switch: a form of the page (CSRF token), back to the same page, remembered in a cookie
    csrf = csrf_of(english.text)
    assert b.post("/console/lang", data={"lang": "zh-CN", "next": "/console/login"}).status_code == 403
    chosen = b.post("/console/lang", data={"lang": "zh-CN", "next": "/console/login", "csrf_token": csrf})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/console/login"
    assert "duebot_lang=zh-CN" in chosen.headers["set-cookie"] and "Path=/console" in chosen.headers["set-cookie"]
    assert '<html lang="zh-CN">' in b.get("/console/login", headers={"Accept-Language": "en-US"}).text
    elsewhere = b.post("/console/lang", data={"lang": "en", "next": "https://evil.example/", "csrf_token": csrf})
    assert elsewhere.headers["location"] == "/console/"  # never an open redirect
    assert b.post("/console/lang", data={"lang": "fr", "csrf_token": csrf}).status_code == 422

    # logged in, in Chinese: translated labels, a wrong password answered in Chinese, masking as before
    assert b.post("/console/lang", data={"lang": "zh", "csrf_token": csrf}).status_code == 303
    wrong = login(b, "quinn", "not-the-password")
    assert "用户名或密码错误。" in wrong.text
    assert login(b, "quinn").status_code == 303
    listing = b.get("/console/transcripts").text
    assert "<h1>对话记录</h1>" in listing and "1 个会话" in listing and "筛选" in listing
    page = b.get(f"/console/transcript?c={CONVERSATION}").text
    assert "个人信息已遮蔽" in page and "解除遮蔽（将记录）" in page and "欠费用户" in page
    # masked as in English (this store has no account for the conversation: the patterns catch phone and amount)
    assert "[phone]" in page and "[amount]" in page and "+14155550101" not in page and "210.00" not in page
    assert '<title>对话记录 sms:A-1 · duebot</title>' in page
    refused = b.get("/console/transcript?c=sms:NOPE")
    assert refused.status_code == 404 and "证据日志中没有此会话" in refused.text
