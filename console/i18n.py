"""The console's languages: English (the messages as written) and Simplified Chinese (console/locales/zh_CN.yml).

Templates use Jinja2's i18n extension (`{% trans %}…{% endtrans %}` and `_("…")`, new-style: `%(name)s`
placeholders, a literal percent sign written `%%`); the language of a page is the `lang` value of its context,
which a context processor sets for every console response from the request: the saved choice (the `duebot_lang`
cookie the menu's EN / 中文 switch sets), else the browser's Accept-Language (any zh* → zh-CN), else English.

Python code marks what it shows: `Msg("no campaign {campaign}", campaign=…)` is the English text (a str, so logs,
the CLI and comparisons see English) that remembers its message id and parameters, so a page renders it in the
reader's language; `N_("…")` marks a word for the catalogue without changing it. The catalogue is data: a flat
YAML mapping from the English message to its translation; what it lacks is shown in English."""

from __future__ import annotations

import contextlib
import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

LOCALES = Path(__file__).resolve().parent / "locales"
EN, ZH = "en", "zh-CN"
LANGUAGES = {EN: "EN", ZH: "中文"}  # code → how the switch names it (each in its own language)
DEFAULT = EN
COOKIE = "duebot_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
FILES = {ZH: "zh_CN.yml"}


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "translate this later"
    """Mark a word or message for the catalogue; it is translated where it is shown."""
    return text


class Msg(str):
    """An English message (with its `{name}` parameters filled in) that a page can show in another language."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Msg:
        self = super().__new__(cls, msgid.format(**params) if params else msgid)
        self.msgid, self.params = msgid, params
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles keep the message id
        return (_rebuild, (self.msgid, self.params))

    def translated(self, lang: str | None) -> str:
        text = catalogue(lang).get(self.msgid) or self.msgid
        params = {k: v.translated(lang) if isinstance(v, Msg) else v for k, v in self.params.items()}
        try:
            return text.format(**params) if params else text
        except (KeyError, IndexError, ValueError):  # a broken translation: English rather than an error page
            return str(self)


def _rebuild(msgid: str, params: dict[str, Any]) -> Msg:
    return Msg(msgid, **params)


def normalise(code: str | None) -> str | None:
    """A language tag as we serve it ("zh", "zh_CN", "zh-Hans-CN" → "zh-CN"; "en-GB" → "en"), None if unserved."""
    tag = (code or "").strip().lower().replace("_", "-")
    if tag == "zh" or tag.startswith("zh-"):
        return ZH
    if tag == "en" or tag.startswith("en-"):
        return EN
    return None


def from_accept_language(header: str | None) -> str | None:
    """The served language the browser prefers most (RFC 9110 §12.5.4 weights), None if it names none of them."""
    ranked = []
    for position, part in enumerate((header or "").split(",")[:32]):
        tag, _, parameters = part.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if tag.strip() and weight > 0:
            ranked.append((-weight, position, tag))
    for _, _, tag in sorted(ranked):
        found = normalise(tag)
        if found:
            return found
    return None


def choose(saved: str | None, accept_language: str | None) -> str:
    """The saved choice, else the browser's languages, else English."""
    return normalise(saved) or from_accept_language(accept_language) or DEFAULT


def language_of(request: Any) -> str:
    """The language of a page for this request (a Starlette Request)."""
    return choose(request.cookies.get(COOKIE), request.headers.get("accept-language"))


@lru_cache(maxsize=8)
def catalogue(lang: str | None) -> dict[str, str]:
    """English message → translation for `lang` (empty for English: the messages are English)."""
    name = FILES.get(normalise(lang) or DEFAULT)
    if name is None:
        return {}
    data = yaml.safe_load((LOCALES / name).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{LOCALES / name}: a flat mapping of English message to translation is expected")
    return data


def translate(text: Any, lang: str | None) -> str:
    """A Msg in `lang`; a plain string through the catalogue (a fixed word: status, role, label), else as it is."""
    if isinstance(text, Msg):
        return text.translated(lang)
    if text is None:
        return ""
    return catalogue(lang).get(str(text)) or str(text)


def placeholders(text: str) -> set[str]:
    """The parameters a message names: `%(name)s` (templates) and `{name}` (Msg) — a translation keeps them all."""
    found = set(re.findall(r"%\((\w+)\)[sd]", text))
    with contextlib.suppress(ValueError):  # a stray brace: no {name} placeholders to compare
        found |= {f"{{{name}}}" for _, name, _, _ in string.Formatter().parse(text) if name}
    return found


# ------------------------------------------------------------------------------------ Jinja2


@pass_context
def _gettext(context: Context, message: str) -> str:
    return catalogue(context.get("lang")).get(message) or message


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    english = singular if n == 1 else plural
    # Chinese has one form: its catalogue translates the plural message (and the singular one, for n = 1)
    return catalogue(context.get("lang")).get(english) or english


@pass_context
def _t(context: Context, value: Any) -> str:
    """`{{ value|t }}`: a word from the data (a status, a role, a KPI label) or a Msg, in the page's language."""
    return translate(value, context.get("lang"))


@pass_context
def _msg(context: Context, value: Any) -> Any:
    """`{{ value|msg }}`: only a Msg is translated; any other text (what a subscriber said) is shown as it is."""
    return value.translated(context.get("lang")) if isinstance(value, Msg) else value


def install(env: Environment) -> None:
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # a message's line breaks and indentation are not part of it
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["t"] = _t
    env.filters["msg"] = _msg
    env.globals["LANGUAGES"] = LANGUAGES


def context(request: Any) -> dict[str, Any]:
    """The context processor of every console template."""
    lang = language_of(request)
    return {"lang": lang}


# Words that pages show from data: translated when the catalogue has them, shown as they are otherwise.
DATA_WORDS = (
    # campaign statuses, account and attempt states, channels
    N_("draft"), N_("running"), N_("paused"), N_("cancelled"), N_("completed"),
    N_("active"), N_("done"), N_("started"), N_("denied"), N_("unknown"), N_("failed"), N_("queued"),
    N_("sms"), N_("voice"), N_("chat"), N_("human"), N_("email"),
    # transcript speakers
    N_("bot"), N_("debtor"), N_("agent"), N_("system"), N_("caller"),
    # emotion labels (emotion/dataset.py)
    N_("neutral"), N_("angry"), N_("distressed"),
    # the access log: kinds of record, what was done, the way in
    N_("access"), N_("annotation"), N_("view"), N_("unmask"), N_("listen"), N_("export"), N_("export transcript"),
    N_("export bundle"), N_("console"), N_("cli"),
    # how the KPI page groups and cuts
    N_("branch"), N_("segment"), N_("week"), N_("month"), N_("quarter"), N_("year"), N_("all"),
    N_("no seed target"),
)
