"""Where is the subscriber? Their record's zone when given, else every zone their number may be in."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

UNKNOWN_ZONE = "Etc/Unknown"


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@lru_cache(maxsize=262144)
def number_info(to: str, default_region: str | None) -> tuple[bool, tuple[str, ...]]:
    """(is a valid number, candidate zone names). Parsing costs ~30 us, so results are cached."""
    try:
        parsed = phonenumbers.parse(to, default_region)
    except phonenumbers.NumberParseException:
        return False, ()
    if not phonenumbers.is_valid_number(parsed):
        return False, ()
    names = tuple(n for n in pn_timezone.time_zones_for_number(parsed) if n != UNKNOWN_ZONE)
    return True, names


@lru_cache(maxsize=65536)
def zones_for_names(names: tuple[str, ...]) -> tuple[ZoneInfo, ...] | None:
    """All zones or None: one unresolvable name makes the whole set unknown (fail closed)."""
    out = []
    for name in names:
        z = zone(name)
        if z is None:
            return None
        out.append(z)
    return tuple(out) or None


@lru_cache(maxsize=262144)
def resolve(to: str, subscriber_tz: str | None, default_region: str | None
            ) -> tuple[bool, tuple[ZoneInfo, ...] | None]:
    """(number valid, zones). Zones are None when unknown; the subscriber's record wins over the number.
    Cached as a whole too: it runs once per decision, and one lookup beats two."""
    valid, names = number_info(to, default_region)
    if subscriber_tz is not None:
        return valid, zones_for_names((subscriber_tz,))
    return valid, zones_for_names(names) if names else None
