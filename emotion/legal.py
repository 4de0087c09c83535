"""Legal threats by phrase: a closed vocabulary, so a pattern list backs up the trained legal heads' recall.

The phrases are the `legal` signal of policies/vulnerability.yml (English and Chinese), the same list the
conversation guard reads, so the emotion service and the guard never disagree about what a legal threat is.
`has` folds a Chinese line first (律師 → 律师, 起訴 → 起诉: duebot/zh_text.py), as the list is written in simplified
characters.
"""

from __future__ import annotations

from duebot.policies.vulnerability import Signal, has


def mentions_legal_threat(text: str) -> bool:
    return has(text, Signal.LEGAL)
