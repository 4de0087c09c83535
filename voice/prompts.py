"""What the voice pipeline itself says to the caller (the apology, the voicemail message, the read-back
questions), per conversation language; the data is voice/prompts.yml, as channels/sms/texts.yml is for SMS."""

from __future__ import annotations

from pathlib import Path

from duebot.channels.language_texts import LanguageTexts

PROMPTS = Path(__file__).resolve().parent / "prompts.yml"
KINDS = ("technical_trouble", "voicemail", "did_you_say", "say_yes_or_no", "say_again")


_PROMPTS = LanguageTexts(PROMPTS, KINDS)


def load_prompts() -> dict[str, dict[str, str]]:
    return _PROMPTS.data


def check_language(language: str) -> str:
    """Called as a call is set up, so a missing prompt file or language fails then, not when a prompt is due."""
    if language not in load_prompts():
        raise ValueError(f"no voice prompts for language {language!r} in {PROMPTS}")
    return language


def prompt(kind: str, language: str = "en", **values: str) -> str:
    return _PROMPTS.render(kind, language, **values)
