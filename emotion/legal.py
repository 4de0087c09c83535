"""Legal-threat phrases: a closed vocabulary, so a pattern list backs up the trained legal head's recall."""

from __future__ import annotations

import re

# Threats of legal or regulatory action, and notices that a lawyer now represents the subscriber (a collector
# must then talk to the lawyer, not the subscriber).
_PATTERNS = [
    r"\b(my|a|our) (lawyer|attorney|solicitor|legal (team|representative|counsel))\b",
    r"\b(sue|suing|sued|lawsuit|legal action|small claims)\b",
    r"\b(see|take|drag|taking) (you|u|your \w+)( \w+)? (to|in|through) (the )?courts?\b",
    r"\b(report|reporting|reported|complain\w*|complaint) (\w+ ){0,4}(to|with) (the )?"
    r"(regulator|ombudsman|fcc|ftc|cfpb|ofcom|attorney general|trading standards|bbb|better business bureau)\b",
    r"\b(regulator|ombudsman|fcc|ftc|cfpb|ofcom|trading standards)\b.*\b(report|complain|complaint|filed|lodged)",
    r"\bin front of a judge\b",
]
_REGEX = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def mentions_legal_threat(text: str) -> bool:
    return _REGEX.search(text) is not None
