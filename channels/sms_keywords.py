"""STOP / START / HELP: classify a whole inbound message before anything else sees it.

The standard carrier keywords (CTIA; Twilio's Advanced Opt-Out uses the same lists) plus the pack's own
`opt_out_keywords` (data, e.g. the us pack's "opt out", the cn pack's 退订/TD). Matching is on the whole
message, case-insensitive, after trimming spaces and trailing punctuation, so "Stop." and " stop " opt out
but "please don't stop the plan" does not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from enum import Enum

OPT_OUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT", "退订", "TD")
OPT_IN = ("START", "UNSTOP", "YES START", "SUBSCRIBE")
HELP = ("HELP", "INFO", "帮助")
_TRIM = re.compile(r"^[\s\"'“”‘’]+|[\s.!?。！？,，;；\"'“”‘’]+$")
_SPACES = re.compile(r"\s+")


class Keyword(Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def normalise(text: str) -> str:
    """Fold width (ＳＴＯＰ), case and inner whitespace; strip surrounding quotes and punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _TRIM.sub("", folded))


class KeywordMatcher:
    def __init__(self, extra_opt_out: Iterable[str] = ()) -> None:
        self._table: dict[str, Keyword] = {}
        for words, kind in ((HELP, Keyword.HELP), (OPT_IN, Keyword.OPT_IN), (OPT_OUT, Keyword.OPT_OUT),
                            (tuple(extra_opt_out), Keyword.OPT_OUT)):
            for word in words:
                self._table[normalise(word)] = kind  # opt-out last: it wins any overlap

    def classify(self, text: str) -> Keyword | None:
        return self._table.get(normalise(text))
