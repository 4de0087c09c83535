"""Texts the SMS channel sends outside the dialogue (keyword answers, reminders), per conversation language.

Data in channels/sms/texts.yml; the conversation language is decided as for the dialogue
(duebot.settings.conversation_language), from the account, or for an unknown sender from the script of what it
texted (退订 gets a Chinese answer).
"""

from __future__ import annotations

import re
from pathlib import Path

from duebot.channels.language_texts import LanguageTexts
from duebot.settings import conversation_language

TEXTS = Path(__file__).resolve().parent / "texts.yml"
KINDS = ("opt_out", "opt_in", "help", "reminder", "credit_repair", "small_repayment")
_CJK = re.compile(r"[\u3400-\u9fff]")


_TEXTS = LanguageTexts(TEXTS, KINDS)


def load_texts() -> dict[str, dict[str, str]]:
    return _TEXTS.data


def text_language(account_language: str | None, said: str = "") -> str:
    if account_language:
        return conversation_language(account_language)
    return "zh" if _CJK.search(said) else conversation_language(None)


def campaign_text_kind(step_name: str) -> str:
    """A campaign step named sms_<kind> sends the text <kind> when there is one, else the neutral reminder."""
    kind = step_name.removeprefix("sms_")
    return kind if kind in KINDS and kind not in ("opt_out", "opt_in", "help") else "reminder"


def render(kind: str, language: str, **values: str) -> str:
    return _TEXTS.render(kind, language, **values)
