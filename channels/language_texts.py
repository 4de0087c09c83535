"""Fixed texts per conversation language, kept as data (a YAML file with one section per language).

The SMS channel's keyword answers (channels/sms/texts.yml) and the voice pipeline's own prompts (voice/prompts.yml)
are loaded and checked the same way: every language duebot converses in must carry every kind of text.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import yaml

from duebot.settings import LANGUAGES


class LanguageTexts:
    def __init__(self, path: Path, kinds: tuple[str, ...]) -> None:
        self.path, self.kinds = path, kinds

    @cached_property
    def data(self) -> dict[str, dict[str, str]]:
        data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        for language in LANGUAGES:
            missing = [kind for kind in self.kinds if kind not in (data.get(language) or {})]
            if missing:
                raise ValueError(f"{self.path}: {language} lacks {', '.join(missing)}")
        return data

    def render(self, kind: str, language: str, **values: str) -> str:
        return self.data[language][kind].format(**values)
