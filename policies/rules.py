"""Rules: one job each, registered by name, configured by a pack.

`check(req, zones, t)` returns None when the rule lets the contact through at instant t, else the instant at
which it alone would (math.inf when waiting cannot help). Counter-based rules also describe, via
`counters`, the Redis-side counts a live reservation must re-check and increment atomically."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from duebot.policies import codes
from duebot.policies.timeutil import DAY, day_start, local_day, local_wall

if TYPE_CHECKING:
    from duebot.policies.gate import HistoryEntry, Request

Zones = tuple[ZoneInfo, ...]
REGISTRY: dict[str, type[Rule]] = {}
ALL_PURPOSES = ("collection", "reminder", "reply", "transactional")
# `transactional`: a message the subscriber asked for in a conversation (the payment link). It is never a collection
# contact: the caps, the first-contact rule and the reminder cap neither count it nor refuse it, and their packs may
# not name it. The opt-out holds it like everything else; each pack says whether quiet hours do (QuietHours).
COUNTED_PURPOSES = ("collection", "reminder", "reply")
# Quiet hours may be lifted for these purposes only: a pack never drops quiet hours for collection or reminders.
QUIET_HOURS_OPTIONAL = ("reply", "transactional")


def register(name: str) -> Callable[[type[Rule]], type[Rule]]:
    def deco(cls: type[Rule]) -> type[Rule]:
        if name in REGISTRY:
            raise ValueError(f"rule {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return deco


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """A live count that must stay below `cap`: Redis members of `key` scored after `after`, plus history
    entries in the window Redis does not know of (`history_count` without a reservation id, and those of
    `history_ids` that are not members of `key`)."""
    key: str
    cap: int
    history_count: int
    after: float
    code: str
    history_ids: tuple[str, ...] = ()


def counter_check(key: str, cap: int, entries: list[HistoryEntry], after: float, code: str) -> CounterCheck:
    ids = tuple(e.reservation_id for e in entries if e.reservation_id is not None)
    return CounterCheck(key, cap, len(entries) - len(ids), after, code, ids)


class Rule:
    name: ClassVar[str] = ""
    code: ClassVar[str] = ""
    time_based: ClassVar[bool] = False
    needs_zones: ClassVar[bool] = False

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        raise NotImplementedError

    def counters(self, req: Request, zones: Zones, t: float) -> list[CounterCheck]:
        return []

    @classmethod
    def from_params(cls, params: Mapping[str, Any], pack: Mapping[str, Any]) -> Rule:
        return cls(**params)


def _hhmm(text: object, name: str) -> int:
    if not isinstance(text, str) or len(text.split(":")) != 2:
        raise ValueError(f"{name} must be 'HH:MM', got {text!r}")
    h, m = (int(x) for x in text.split(":"))
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 1440:
        raise ValueError(f"{name} out of range: {text!r}")
    return h * 3600 + m * 60


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _names(values: Iterable[str], allowed: tuple[str, ...], name: str) -> frozenset[str]:
    out = frozenset(values)
    if not out <= set(allowed):
        raise ValueError(f"{name} must be among {allowed}, got {sorted(out)}")
    return out


def _counted(entry: HistoryEntry) -> bool:
    """Whether a past contact is a collection contact at all: a transactional text never is."""
    return entry.purpose in COUNTED_PURPOSES


def _same_debt(entry_debt: str | None, debt: str | None) -> bool:
    # Unknown debt on either side: count it, the stricter reading.
    return entry_debt is None or debt is None or entry_debt == debt


# ---------------------------------------------------------------- time-based rules

@register("quiet_hours")
class QuietHours(Rule):
    """Contact only between `start` and `end` local wall-clock time, in every candidate zone, for the contacts of
    `purposes` (default: all). A pack may leave out `reply` and `transactional` only (QUIET_HOURS_OPTIONAL)."""
    code = codes.QUIET_HOURS
    time_based = True
    needs_zones = True

    def __init__(self, start: str = "08:00", end: str = "21:00", purposes: Iterable[str] = ALL_PURPOSES) -> None:
        self.start = _hhmm(start, "start")
        self.end = _hhmm(end, "end")
        if self.start >= self.end:
            raise ValueError("quiet_hours start must be before end")
        self.purposes = _names(purposes, ALL_PURPOSES, "purposes")
        if dropped := sorted(set(ALL_PURPOSES) - self.purposes - set(QUIET_HOURS_OPTIONAL)):
            raise ValueError(f"quiet_hours must hold {', '.join(dropped)} too; only "
                             f"{', '.join(QUIET_HOURS_OPTIONAL)} may be left out of its purposes")

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        if req.contact.purpose not in self.purposes:
            return None
        until = None
        for zone in zones or ():
            ordinal, sod = local_day(zone, t)
            if self.start <= sod < self.end:
                continue
            nxt = local_wall(zone, ordinal if sod < self.start else ordinal + 1, self.start)
            if nxt <= t:  # DST oddities: never return an instant that does not move forward
                nxt = t + 60.0
            if until is None or nxt > until:
                until = nxt
        return until


class _WindowCount(Rule):
    """Shared logic for 'at most N in the last D days': the window is the union of the rolling D*24 h and the
    D local calendar days ending today (in every zone), so it is never shorter than either reading."""
    time_based = True
    needs_zones = True
    cap: int
    days: int
    uncounted: frozenset[str]

    def applies(self, req: Request) -> bool:
        raise NotImplementedError

    def counts(self, req: Request, entry: HistoryEntry) -> bool:
        raise NotImplementedError

    def window_after(self, zones: Zones, t: float) -> float:
        after = t - self.days * DAY
        for zone in zones:
            ordinal, _ = local_day(zone, t)
            ds = day_start(zone, ordinal - (self.days - 1)) - 1e-6
            after = min(after, ds)
        return after

    def expiry(self, zones: Zones, at: float) -> float:
        out = at + self.days * DAY
        for zone in zones:
            ordinal, _ = local_day(zone, at)
            out = max(out, day_start(zone, ordinal + self.days))
        return out

    def _matching(self, req: Request) -> list[HistoryEntry]:
        return [e for e in req.history if e.outcome not in self.uncounted and _counted(e) and self.counts(req, e)]

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        if not self.applies(req):
            return None
        after = self.window_after(zones or (), t)
        inside = [e.at for e in self._matching(req) if e.at > after]
        excess = len(inside) - self.cap + 1
        if excess <= 0:
            return None
        expiries = sorted(self.expiry(zones or (), at) for at in inside)
        return max(expiries[excess - 1], t + 1e-6)

    def key(self, req: Request) -> str:
        return self.name

    def counters(self, req: Request, zones: Zones, t: float) -> list[CounterCheck]:
        if not self.applies(req):
            return []
        after = self.window_after(zones, t)
        inside = [e for e in self._matching(req) if e.at > after]
        return [counter_check(self.key(req), self.cap, inside, after, self.code)]


@register("seven_in_seven")
class SevenInSeven(_WindowCount):
    """12 CFR 1006.14(b)(2)(i): no call about a debt once `max_calls` were placed in `window_days` days."""
    code = codes.SEVEN_IN_SEVEN

    def __init__(self, max_calls: int = 7, window_days: int = 7, purposes: Iterable[str] = COUNTED_PURPOSES,
                 uncounted_outcomes: Iterable[str] = ("failed",)) -> None:
        self.cap = _positive_int(max_calls, "max_calls")
        self.days = _positive_int(window_days, "window_days")
        self.purposes = _names(purposes, COUNTED_PURPOSES, "purposes")
        self.uncounted = frozenset(uncounted_outcomes)

    def applies(self, req: Request) -> bool:
        return req.contact.channel == "voice" and req.contact.purpose in self.purposes

    def counts(self, req: Request, entry: HistoryEntry) -> bool:
        return entry.channel == "voice" and _same_debt(entry.debt_id, req.contact.debt_id)

    def key(self, req: Request) -> str:
        return f"{self.name}:{req.contact.debt_id or '*'}"


@register("reminder_cap")
class ReminderCap(_WindowCount):
    """At most `max_reminders` reminders (any channel) per subscriber per `window_days` days."""
    code = codes.REMINDER_CAP

    def __init__(self, max_reminders: int = 2, window_days: int = 7,
                 uncounted_outcomes: Iterable[str] = ("failed",)) -> None:
        self.cap = _positive_int(max_reminders, "max_reminders")
        self.days = _positive_int(window_days, "window_days")
        self.uncounted = frozenset(uncounted_outcomes)

    def applies(self, req: Request) -> bool:
        return req.contact.purpose == "reminder"

    def counts(self, req: Request, entry: HistoryEntry) -> bool:
        return entry.purpose == "reminder"


@register("daily_call_cap")
class DailyCallCap(Rule):
    """At most `max_calls` voice calls of the given purposes per subscriber per local calendar day."""
    code = codes.DAILY_CALL_CAP
    time_based = True
    needs_zones = True

    def __init__(self, max_calls: int = 2, purposes: Iterable[str] = ("collection",),
                 uncounted_outcomes: Iterable[str] = ("failed",)) -> None:
        self.cap = _positive_int(max_calls, "max_calls")
        self.purposes = _names(purposes, COUNTED_PURPOSES, "purposes")
        self.uncounted = frozenset(uncounted_outcomes)

    def applies(self, req: Request) -> bool:
        return req.contact.channel == "voice" and req.contact.purpose in self.purposes

    def _calls(self, req: Request) -> list[HistoryEntry]:
        return [e for e in req.history
                if e.channel == "voice" and e.purpose in self.purposes and e.outcome not in self.uncounted]

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        if not self.applies(req):
            return None
        calls = self._calls(req)
        if len(calls) < self.cap:
            return None
        until = None
        for zone in zones or ():
            ordinal, _ = local_day(zone, t)
            start, end = day_start(zone, ordinal), day_start(zone, ordinal + 1)
            if sum(1 for e in calls if start <= e.at < end) >= self.cap and (until is None or end > until):
                until = end
        return until

    def counters(self, req: Request, zones: Zones, t: float) -> list[CounterCheck]:
        if not self.applies(req):
            return []
        calls = self._calls(req)
        out = []
        for zone in zones:
            ordinal, _ = local_day(zone, t)
            start, end = day_start(zone, ordinal), day_start(zone, ordinal + 1)
            today = [e for e in calls if start <= e.at < end]
            out.append(counter_check(self.name, self.cap, today, start - 1e-6, self.code))
        return out


@register("recent_conversation")
class RecentConversation(Rule):
    """12 CFR 1006.14(b)(2)(ii): no call about a debt within `days` days after a telephone conversation about
    it; the conversation's local day is day 1, so calls resume on local day `days + 1`."""
    code = codes.RECENT_CONVERSATION
    time_based = True
    needs_zones = True

    def __init__(self, days: int = 7, outcomes: Iterable[str] = ("conversation",),
                 purposes: Iterable[str] = COUNTED_PURPOSES) -> None:
        self.days = _positive_int(days, "days")
        self.outcomes = frozenset(outcomes)
        self.purposes = _names(purposes, COUNTED_PURPOSES, "purposes")

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        c = req.contact
        if c.channel != "voice" or c.purpose not in self.purposes:
            return None
        until = None
        for e in req.history:
            if (e.channel != "voice" or e.outcome not in self.outcomes or not _counted(e)
                    or not _same_debt(e.debt_id, c.debt_id)):
                continue
            for zone in zones or ():
                free_at = day_start(zone, local_day(zone, e.at)[0] + self.days)
                if t < free_at and (until is None or free_at > until):
                    until = free_at
        return until


# ---------------------------------------------------------------- holds and consent (waiting does not help)

@register("opt_out")
class OptOut(Rule):
    """An opt-out holds every contact on every channel, at once — replies and confirmations included (the
    channel's STOP confirmation is sent by the channel's own transactional path, not through collection)."""
    code = codes.OPTED_OUT

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        return math.inf if req.subscriber.opted_out else None


@register("dispute_hold")
class DisputeHold(Rule):
    """An open dispute holds collection contact. A `reply` to the subscriber's own message (e.g. about the
    dispute) stays possible unless the pack lists it."""
    code = codes.DISPUTE_OPEN

    def __init__(self, purposes: Iterable[str] = ("collection", "reminder")) -> None:
        self.purposes = _names(purposes, ALL_PURPOSES, "purposes")

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        if req.subscriber.dispute_open and req.contact.purpose in self.purposes:
            return math.inf
        return None


@register("first_contact_sms")
class FirstContactSms(Rule):
    """A voice call about a debt only after a written (SMS/app) contact about it that did not fail; a transactional
    text (a payment link the subscriber asked for) is not that contact."""
    code = codes.FIRST_CONTACT_MUST_BE_SMS

    def __init__(self, purposes: Iterable[str] = ("collection", "reminder"),
                 written_channels: Iterable[str] = ("sms", "app")) -> None:
        self.purposes = _names(purposes, COUNTED_PURPOSES, "purposes")
        self.written = frozenset(written_channels)

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        c = req.contact
        if c.channel != "voice" or c.purpose not in self.purposes:
            return None
        for e in req.history:
            if (e.channel in self.written and e.at <= t and e.outcome != "failed" and _counted(e)
                    and _same_debt(e.debt_id, c.debt_id)):
                return None
        return math.inf


@register("ai_voice_consent")
class AiVoiceConsent(Rule):
    """TCPA: an artificial/prerecorded-voice call to a mobile (or a line not known to be a landline) needs
    prior express consent."""
    code = codes.NO_AI_VOICE_CONSENT

    def __init__(self, line_types: Iterable[str] = ("mobile", "unknown")) -> None:
        self.line_types = _names(line_types, ("mobile", "landline", "unknown"), "line_types")

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        c, s = req.contact, req.subscriber
        if c.channel == "voice" and c.ai_voice and s.line_type in self.line_types and not s.consent_ai_voice:
            return math.inf
        return None


@register("sms_consent")
class SmsConsent(Rule):
    """An SMS needs the subscriber's SMS consent, except for purposes the pack exempts."""
    code = codes.NO_SMS_CONSENT

    def __init__(self, exempt_purposes: Iterable[str] = ()) -> None:
        self.exempt = _names(exempt_purposes, ALL_PURPOSES, "exempt_purposes")

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        c = req.contact
        if c.channel == "sms" and c.purpose not in self.exempt and not req.subscriber.consent_sms:
            return math.inf
        return None


@register("sms_opt_out_notice")
class SmsOptOutNotice(Rule):
    """When the request carries the SMS text, it must contain one of the pack's opt-out notices (the one of the
    conversation's language; case-insensitive). Without a text the sender is trusted to append the notice."""
    code = codes.MISSING_OPT_OUT_NOTICE

    def __init__(self, notice: str, purposes: Iterable[str] = ("collection", "reminder"),
                 alternatives: Iterable[str] = ()) -> None:
        notices = [notice, *alternatives]
        if not all(isinstance(n, str) and n.strip() for n in notices):
            raise ValueError("sms_opt_out_notice needs a non-empty notice")
        self.notices = tuple(dict.fromkeys(n.casefold() for n in notices))
        self.purposes = _names(purposes, ALL_PURPOSES, "purposes")

    @classmethod
    def from_params(cls, params: Mapping[str, Any], pack: Mapping[str, Any]) -> Rule:
        return cls(**{"notice": pack.get("sms_opt_out_notice"),
                      "alternatives": pack.get("sms_opt_out_notices") or (), **params})

    def check(self, req: Request, zones: Zones | None, t: float) -> float | None:
        c = req.contact
        if c.channel == "sms" and c.purpose in self.purposes and c.text is not None \
                and not any(notice in c.text.casefold() for notice in self.notices):
            return math.inf
        return None
