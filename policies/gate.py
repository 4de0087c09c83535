"""The gate: a typed request, a decision, and `decide` — pure, clock passed in, fails closed.

Invalid requests raise `RequestError` from `parse_request` (naming the field); `decide` itself never raises:
an unparseable request, an unknown pack or a crashing rule all come back as a not-allowed decision."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import msgspec

from duebot.policies import codes, timezones
from duebot.policies.timeutil import TimestampError, format_instant, parse_instant

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from duebot.policies.packs import Pack

# The Literal types drive the fast (msgspec) validator; the tuples, derived from them, the reference one.
Channel = Literal["voice", "sms"]
HistoryChannel = Literal["voice", "sms", "app"]  # an app push counts as the written first contact in cn
Purpose = Literal["collection", "reminder", "reply", "transactional"]  # policies/rules.py: ALL_PURPOSES
LineType = Literal["mobile", "landline", "unknown"]
Outcome = Literal["no_answer", "voicemail", "answered", "conversation", "failed", "delivered"]
CHANNELS: tuple[str, ...] = get_args(Channel)
HISTORY_CHANNELS: tuple[str, ...] = get_args(HistoryChannel)
PURPOSES: tuple[str, ...] = get_args(Purpose)
LINE_TYPES: tuple[str, ...] = get_args(LineType)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
MAX_NEXT_ITERATIONS = 64
NEXT_HORIZON = 400 * 86400.0  # beyond this, say "no time-based answer" (null) rather than search forever


class RequestError(ValueError):
    """Invalid request; `field` is the dotted path of the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# Structs rather than dataclasses: ~9x cheaper to build and faster to read, and a batch of a million requests
# builds several million of them. gc=False: they hold only scalars and tuples of them, never a cycle.
class HistoryEntry(msgspec.Struct, frozen=True, gc=False):
    at: float
    channel: str
    purpose: str
    debt_id: str | None
    outcome: str | None
    reservation_id: str | None = None  # set when the contact went through a live reservation (dedupes counts)


class Contact(msgspec.Struct, frozen=True, gc=False):
    """Also the wire type: decoded straight from JSON, so the Literal types below are the validation."""
    channel: Channel
    purpose: Purpose
    to: str
    debt_id: str | None = None
    ai_voice: bool = True  # duebot's own voice is synthetic, so "not said" means AI voice
    text: str | None = None  # optional SMS body, checked for the opt-out notice when given


class Subscriber(msgspec.Struct, frozen=True, gc=False):
    id: str
    opted_out: bool
    dispute_open: bool
    timezone: str | None = None
    line_type: str = "unknown"
    consent_ai_voice: bool = False  # absent consent = no consent
    consent_sms: bool = False


class Request(msgspec.Struct, frozen=True):
    now: float
    contact: Contact
    subscriber: Subscriber
    history: tuple[HistoryEntry, ...] = ()
    # The JSON as received, for the audit digest: the object, or its text (bytes / msgspec.Raw) when decoded from it.
    raw: Mapping[str, Any] | bytes | msgspec.Raw | None = None


class Decision(msgspec.Struct, frozen=True, gc=False):
    allowed: bool
    reasons: tuple[str, ...]
    next_allowed_at: float | None
    pack: str
    now: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "allowed": self.allowed,
            "reasons": list(self.reasons),
            "next_allowed_at": None if self.next_allowed_at is None else format_instant(self.next_allowed_at),
            "pack": self.pack,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def denied(reason: str, pack: str, error: str | None = None, now: float | None = None) -> Decision:
    return Decision(False, (reason,), None, pack, now, error)


# ---------------------------------------------------------------- parsing

def _obj(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RequestError(field, "must be a JSON object")
    return value


def _enum(obj: Mapping[str, Any], key: str, field: str, allowed: tuple[str, ...], default: str | None = None,
          ) -> str:
    value = obj.get(key, default)
    if value is None:
        raise RequestError(f"{field}.{key}", f"is required (one of {', '.join(allowed)})")
    if value not in allowed:
        raise RequestError(f"{field}.{key}", f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _bool(obj: Mapping[str, Any], key: str, field: str, default: bool | None = None) -> bool:
    value = obj.get(key, default)
    if value is None:
        raise RequestError(f"{field}.{key}", "is required (true or false)")
    if value is not True and value is not False:
        raise RequestError(f"{field}.{key}", f"must be true or false, got {value!r}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"{field}.{key}", f"must be a string, got {value!r}")
    return value


def _instant(value: object, field: str) -> float:
    if value is None:
        raise RequestError(field, "is required (ISO 8601 with offset, e.g. 2026-11-24T13:05:00Z)")
    try:
        return parse_instant(value)
    except TimestampError as exc:
        raise RequestError(field, str(exc)) from None


def _parse_checked(data: object) -> Request:
    """The reference validator: field by field, so its error names the first offending field."""
    root = _obj(data, "request")
    now = _instant(root.get("now"), "now")

    c = _obj(root.get("contact"), "contact")
    to = c.get("to")
    if not isinstance(to, str):
        raise RequestError("contact.to", "is required (a phone number string, e.g. +14155550100)")
    contact = Contact(
        channel=_enum(c, "channel", "contact", CHANNELS),
        purpose=_enum(c, "purpose", "contact", PURPOSES),
        to=to,
        debt_id=_opt_str(c, "debt_id", "contact"),
        ai_voice=_bool(c, "ai_voice", "contact", True),
        text=_opt_str(c, "text", "contact"),
    )

    s = _obj(root.get("subscriber"), "subscriber")
    sid = s.get("id")
    if not isinstance(sid, str) or not sid:
        raise RequestError("subscriber.id", "is required (a non-empty string)")
    consent = s.get("consent")
    if consent is None:
        consent = {}
    consent = _obj(consent, "subscriber.consent")
    subscriber = Subscriber(
        id=sid,
        opted_out=_bool(s, "opted_out", "subscriber"),
        dispute_open=_bool(s, "dispute_open", "subscriber"),
        timezone=_opt_str(s, "timezone", "subscriber"),
        line_type=_enum(s, "line_type", "subscriber", LINE_TYPES, "unknown"),
        consent_ai_voice=_bool(consent, "ai_voice", "subscriber.consent", False),
        consent_sms=_bool(consent, "sms", "subscriber.consent", False),
    )

    raw_history = root.get("history")
    if raw_history is None:
        raw_history = ()
    if not isinstance(raw_history, list | tuple):
        raise RequestError("history", "must be a JSON array")
    history = []
    for i, h in enumerate(raw_history):
        field = f"history[{i}]"
        h = _obj(h, field)
        history.append(HistoryEntry(
            at=_instant(h.get("at"), f"{field}.at"),
            channel=_enum(h, "channel", field, HISTORY_CHANNELS),
            # An unlabelled past contact is counted as collection: the stricter reading.
            purpose=_enum(h, "purpose", field, PURPOSES, "collection"),
            debt_id=_opt_str(h, "debt_id", field),
            outcome=_enum(h, "outcome", field, OUTCOMES) if h.get("outcome") is not None else None,
            reservation_id=_opt_str(h, "reservation_id", field),
        ))
    return Request(now, contact, subscriber, tuple(history), root)


# The fast path: msgspec validates a whole request in C against these wire types (the same rules as
# `_parse_checked`: Literal = enum, no type coercion, null only where the reference allows it), then a little
# Python turns timestamps into floats. Anything it rejects goes through `_parse_checked`, which either names
# the field or (for input the fast path is merely stricter about) returns the request.

class _WireHistory(msgspec.Struct, frozen=True, gc=False):
    at: str
    channel: HistoryChannel
    purpose: Purpose = "collection"  # an unlabelled past contact is counted as collection: the stricter reading
    debt_id: str | None = None
    outcome: Outcome | None = None
    reservation_id: str | None = None


class _WireConsent(msgspec.Struct, frozen=True, gc=False):
    ai_voice: bool = False
    sms: bool = False


class _WireSubscriber(msgspec.Struct, frozen=True, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    opted_out: bool
    dispute_open: bool
    timezone: str | None = None
    line_type: LineType = "unknown"
    consent: _WireConsent | None = None


class _WireRequest(msgspec.Struct, frozen=True, gc=False):
    now: str
    contact: Contact
    subscriber: _WireSubscriber
    history: list[_WireHistory] | None = None


_NO_CONSENT = _WireConsent()
_WIRE_DECODER = msgspec.json.Decoder(_WireRequest)
_FAST_REJECTS = (msgspec.ValidationError, msgspec.DecodeError, TimestampError)


def _from_wire(w: _WireRequest, raw: Mapping[str, Any] | bytes | msgspec.Raw) -> Request:
    s = w.subscriber
    consent = s.consent or _NO_CONSENT
    subscriber = Subscriber(s.id, s.opted_out, s.dispute_open, s.timezone, s.line_type, consent.ai_voice,
                            consent.sms)
    history = () if not w.history else tuple(
        HistoryEntry(parse_instant(h.at), h.channel, h.purpose, h.debt_id, h.outcome, h.reservation_id)
        for h in w.history)
    return Request(parse_instant(w.now), w.contact, subscriber, history, raw)


def parse_request(data: object) -> Request:
    """Validate one JSON request: a decoded object, or its JSON text as bytes. Only timezone, line_type, consent
    and history (plus contact.debt_id, ai_voice, text) may be absent; opted_out and dispute_open must be
    stated, since no default is safe. Raises RequestError naming the first offending field."""
    if type(data) is dict:
        history = data.get("history")
        # msgspec would take an (empty) set for an array; the reference does not, so only lists/tuples go fast.
        if history is None or type(history) is list or type(history) is tuple:
            try:
                return _from_wire(msgspec.convert(data, _WireRequest), data)
            except _FAST_REJECTS:
                pass
    elif isinstance(data, bytes | msgspec.Raw):
        try:
            return _from_wire(_WIRE_DECODER.decode(data), data)
        except _FAST_REJECTS:
            try:
                data = json.loads(bytes(data))
            except ValueError as exc:
                raise RequestError("request", f"is not valid JSON: {exc}") from None
    return _parse_checked(data)


# ---------------------------------------------------------------- deciding

def evaluate(pack: Pack, req: Request) -> Decision:
    """Run every rule of the pack at req.now; reasons list every blocking rule, in pack order."""
    valid, zones = timezones.resolve(req.contact.to, req.subscriber.timezone, pack.default_region)
    reasons: list[str] = []
    if not valid:
        reasons.append(codes.INVALID_NUMBER)
    if zones is None:
        reasons.append(codes.UNKNOWN_TIMEZONE)
    hard = bool(reasons)  # a block that waiting cannot lift
    now = req.now
    latest = now
    for rule in pack.rules if zones is not None else pack.zoneless_rules:
        try:
            until = rule.check(req, zones, now)
        except Exception:  # noqa: BLE001 - a crashing rule must block, not let the contact through
            until = math.inf
            code = codes.RULE_ERROR
        else:
            if until is None:
                continue
            code = rule.code
        if code not in reasons:
            reasons.append(code)
        if until == math.inf or not rule.time_based:
            hard = True
        elif until > latest:
            latest = until
    if not reasons:
        return Decision(True, (), now, pack.id, now)
    nxt = None if hard else next_allowed(pack, req, zones, latest)
    return Decision(False, tuple(reasons), nxt, pack.id, now)


def next_allowed(pack: Pack, req: Request, zones: tuple[ZoneInfo, ...] | None, start: float) -> float | None:
    """Earliest instant >= start at which every time-based rule passes together. Each rule reports when it
    alone would pass; jumping to the latest of those and re-checking converges (counts only expire)."""
    t = start
    horizon = req.now + NEXT_HORIZON
    for _ in range(MAX_NEXT_ITERATIONS):
        latest = t
        for rule in pack.time_rules:
            try:
                until = rule.check(req, zones, t)
            except Exception:  # noqa: BLE001
                return None
            if until is not None:
                if until == math.inf:
                    return None
                latest = max(latest, until)
        if latest == t:
            return t
        if latest > horizon:
            return None
        t = latest
    return None  # e.g. zones whose calling windows never overlap


def decide(request: Request | Mapping[str, Any], pack: Pack | str) -> Decision:
    """Python API: never raises for bad input; fails closed with UNKNOWN_PACK / INVALID_REQUEST / RULE_ERROR."""
    from duebot.policies.packs import PackError, load_pack

    if isinstance(pack, str):
        try:
            pack = load_pack(pack)
        except PackError as exc:
            return denied(codes.UNKNOWN_PACK, str(pack), str(exc))
    if not isinstance(request, Request):
        try:
            request = parse_request(request)
        except RequestError as exc:
            return denied(codes.INVALID_REQUEST, pack.id, str(exc))
    try:
        return evaluate(pack, request)
    except Exception as exc:  # noqa: BLE001 - e.g. a bad zone database; never "allowed" by accident
        return denied(codes.RULE_ERROR, pack.id, f"{type(exc).__name__}: {exc}", request.now)
