"""SMS length: GSM-7 vs UCS-2 encoding and how many segments (billed messages) a text becomes.

GSM 03.38: a single segment holds 160 septets; a concatenated one 153 (the UDH takes 7). Extension characters
(`{ } [ ] ~ | ^ € \\` and form feed) cost two septets and are never split across segments. One character
outside the GSM alphabet switches the whole message to UCS-2: 70 UTF-16 units, or 67 per concatenated segment,
with a surrogate pair (emoji) kept whole. Carriers bill per segment, so the sender counts before sending.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM7_BASIC)
_EXTENSION = frozenset(GSM7_EXTENSION)


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of one segment at this length (160/153 or 70/67)


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC or ch in _EXTENSION for ch in text)


def _pack(costs: list[int], single: int, multi: int) -> int:
    """Segments needed when no character (cost in units) may straddle two segments."""
    if sum(costs) <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments, used = segments + 1, 0
        used += cost
    return segments


def segment_info(text: str) -> SegmentInfo:
    if is_gsm7(text):
        costs = [2 if ch in _EXTENSION else 1 for ch in text]
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # astral characters are a surrogate pair
        single, multi, encoding = 70, 67, "UCS-2"
    units = sum(costs)
    segments = _pack(costs, single, multi)
    return SegmentInfo(encoding, units, segments, single if segments == 1 else multi)
