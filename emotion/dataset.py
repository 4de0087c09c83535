"""Labelled emotion lines (nlu_data/emotion/*.yml, evaluation/emotion_heldout/*.yml) as examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

LABELS: tuple[str, ...] = ("neutral", "angry", "distressed")


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    legal_threat: bool = False


def load(path: Path) -> list[Example]:
    """Lines under each label key, plus `legal_threat: {label: [...]}` lines (legal threats of that label)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for label in LABELS:
        examples += [Example(str(text).strip(), label) for text in data.get(label) or []]
    for label, lines in (data.get("legal_threat") or {}).items():
        if label not in LABELS:
            raise ValueError(f"{path}: legal_threat lines under unknown label {label!r}")
        examples += [Example(str(text).strip(), label, legal_threat=True) for text in lines or []]
    unknown = set(data) - {*LABELS, "legal_threat", "version", "language"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    seen: dict[str, Example] = {}
    for example in examples:
        other = seen.setdefault(example.text.lower(), example)
        if other is not example:
            raise ValueError(f"{path}: {example.text!r} is listed twice")
    return examples


def language_of(path: Path) -> str:
    """The file's `language:` key (en, zh); a file without one is English, as every file was before issue 21."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return str(data.get("language") or "en")


def load_dir(directory: Path, language: str | None = None) -> list[Example]:
    """Every file's lines, or only those of the files in LANGUAGE."""
    return [example for path in sorted(directory.glob("*.yml"))
            if language is None or language_of(path) == language for example in load(path)]
