"""Instants are float POSIX seconds internally (cheap to compare); local calendar maths goes through zoneinfo."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAY = 86400.0


class TimestampError(ValueError):
    pass


def parse_instant(value: object) -> float:
    """ISO 8601 with an explicit offset ('Z' or +hh:mm) -> POSIX seconds. Naive times are refused:
    guessing the zone of the clock is exactly the kind of doubt the gate must not resolve in favour of dialing."""
    if not isinstance(value, str):
        raise TimestampError("must be an ISO 8601 string with a UTC offset, e.g. 2026-11-24T13:05:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimestampError(f"is not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise TimestampError(f"has no UTC offset: {value!r} (append Z or +hh:mm)")
    return parsed.timestamp()


@lru_cache(maxsize=65536)  # a batch shares its `now`; each decision and audit record formats it again
def format_instant(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


@lru_cache(maxsize=65536)
def _day_start(zone: ZoneInfo, ordinal: int) -> float:
    # Local midnight; on the rare zone where midnight is skipped by DST, fold=0 picks the later instant.
    return datetime.combine(date.fromordinal(ordinal), time(0), tzinfo=zone).timestamp()


@lru_cache(maxsize=65536)
def local_wall(zone: ZoneInfo, ordinal: int, seconds: int) -> float:
    """Instant of a wall-clock time (seconds after midnight) on a local date."""
    wall = datetime.combine(date.fromordinal(ordinal), time(0)) + timedelta(seconds=seconds)
    return wall.replace(tzinfo=zone).timestamp()


def local_day(zone: ZoneInfo, ts: float) -> tuple[int, float]:
    """(local date ordinal, seconds since local midnight by the wall clock) of an instant."""
    dt = datetime.fromtimestamp(ts, zone)
    return dt.toordinal(), dt.hour * 3600 + dt.minute * 60 + dt.second + dt.microsecond / 1e6


def day_start(zone: ZoneInfo, ordinal: int) -> float:
    return _day_start(zone, ordinal)
