"""Texts the SMS channel sends outside the dialogue (keyword answers, reminders), per conversation language.

Data in channels/sms_texts.yml; the conversation language is decided as for the dialogue
(duebot.config.conversation_language), from the account, or for an unknown sender from the script of what it
texted (退订 gets a Chinese answer).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from duebot.config import LANGUAGES, conversation_language

TEXTS = Path(__file__).resolve().parent / "sms_texts.yml"
KINDS = ("opt_out", "opt_in", "help", "reminder")
_CJK = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=2)
def load_texts(path: Path = TEXTS) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for language in LANGUAGES:
        missing = [kind for kind in KINDS if kind not in (data.get(language) or {})]
        if missing:
            raise ValueError(f"{path}: {language} lacks {', '.join(missing)}")
    return data


def text_language(account_language: str | None, said: str = "") -> str:
    if account_language:
        return conversation_language(account_language)
    return "zh" if _CJK.search(said) else conversation_language(None)


def render(kind: str, language: str, **values: str) -> str:
    return load_texts()[language][kind].format(**values)
