"""The campaign strategy: data (policies/campaigns/*.yml) → which step each account gets next, and when.

An account's schedule is chosen by segment and age band, and, when the strategy has `score_bands` and the account
has a risk score (risk/, docs/risk.md), by score band first:

    score_bands:
      - below: 60                      # risk score < 60 (0-100, higher = more likely to pay)
        at_least: 0                    # lower bound (inclusive), default 0; a band may give only at_least
        segments: [forgot, cash_flow]  # optional: the segments the band applies to, default every segment
        steps: [sms_credit_repair, sms_small_repayment, ai_call, human_queue]
        # or per age band, like `segments`: steps: {default: [...], elderly: [...]}

The first band (in file order) that matches the account's segment and score gives its schedule; an account without
a score, or whose score matches no band, gets its segment's schedule exactly as without score bands.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from duebot.accounts.importer import SEGMENTS

STRATEGY_DIR = Path(__file__).resolve().parent.parent / "policies" / "campaigns"
CHANNELS = ("sms", "voice", "human")  # human: an agent's queue or a field visit; the bot contacts nobody
PURPOSES = ("reminder", "collection")
BANDS = ("default", "young", "elderly")


class StrategyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    channel: str
    purpose: str
    day_of_month_from: int | None = None  # not before this day of the month (subscriber's local date)
    after_hours: float = 0.0  # not before this long after the previous step started


@dataclass(frozen=True)
class Pacing:
    voice_calls_per_second: float = 5.0
    sms_per_second: float = 50.0
    max_concurrent_calls: int = 30

    def rate(self, channel: str) -> float:
        return self.voice_calls_per_second if channel == "voice" else self.sms_per_second


@dataclass(frozen=True)
class ScoreBand:
    name: str
    below: float
    at_least: float
    segments: frozenset[str] | None  # None: every segment
    schedules: dict[str, tuple[Step, ...]]  # age band → steps; "default" always present

    def matches(self, segment: str, score: float) -> bool:
        return self.at_least <= score < self.below and (self.segments is None or segment in self.segments)

    def schedule(self, band: str) -> tuple[Step, ...]:
        return self.schedules.get(band) or self.schedules["default"]


@dataclass(frozen=True)
class Strategy:
    path: str
    steps: dict[str, Step]
    schedules: dict[tuple[str, str], tuple[Step, ...]]
    stop_on: frozenset[str]
    pacing: Pacing
    young_max_age: int | None = None
    elderly_min_age: int | None = None
    max_call_attempts: int = 3
    doc: dict = field(default_factory=dict, repr=False, compare=False)
    score_bands: tuple[ScoreBand, ...] = ()

    def band_cutoffs(self, today: dt.date) -> tuple[str | None, str | None]:
        """ISO birth dates after the first are young, on or before the second elderly: string comparisons let
        preview band a million rows without parsing a date."""
        young = _years_before(today, self.young_max_age).isoformat() if self.young_max_age is not None else None
        old = _years_before(today, self.elderly_min_age).isoformat() if self.elderly_min_age is not None else None
        return young, old

    def band(self, birth_date: str | dt.date | None, today: dt.date) -> str:
        if not birth_date:
            return "default"
        born = birth_date if isinstance(birth_date, str) else birth_date.isoformat()
        young, old = self.band_cutoffs(today)
        if young is not None and born > young:
            return "young"
        if old is not None and born <= old:
            return "elderly"
        return "default"

    def score_band(self, segment: str, score: float | None) -> ScoreBand | None:
        """The first score band matching, or None (no score, no band, or none matching)."""
        if score is None:
            return None
        return next((b for b in self.score_bands if b.matches(segment, score)), None)

    def schedule(self, segment: str, band: str, score: float | None = None) -> tuple[Step, ...]:
        chosen = self.score_band(segment, score)
        if chosen is not None:
            return chosen.schedule(band)
        return self.schedules.get((segment, band)) or self.schedules[(segment, "default")]

    def due_at(self, step: Step, previous_at: float | None, now: float, zone: ZoneInfo | None) -> float:
        """Earliest instant the strategy wants this step: after the delay, and not before its day of month.
        Quiet hours and caps are the gate's business, not the strategy's."""
        at = max(now, previous_at + step.after_hours * 3600.0) if previous_at is not None else now
        if step.day_of_month_from is not None:
            at = _not_before_day(at, step.day_of_month_from, zone or dt.UTC)
        return at


def _years_before(today: dt.date, years: int) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _not_before_day(at: float, day: int, zone: ZoneInfo | dt.timezone) -> float:
    local = dt.datetime.fromtimestamp(at, zone)
    last = calendar.monthrange(local.year, local.month)[1]
    target = min(day, last)
    if local.day >= target:
        return at
    start = dt.datetime(local.year, local.month, target, tzinfo=zone)
    return start.timestamp()


def parse_strategy(doc: object, source: str = "<memory>") -> Strategy:
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise StrategyError(f"{source}: a strategy is a YAML mapping with version: 1")
    steps: dict[str, Step] = {}
    for name, spec in (doc.get("steps") or {}).items():
        if not isinstance(spec, dict):
            raise StrategyError(f"{source}: steps.{name} must be a mapping")
        channel, purpose = spec.get("channel"), spec.get("purpose", "collection")
        if channel not in CHANNELS or purpose not in PURPOSES:
            raise StrategyError(f"{source}: steps.{name}: channel one of {CHANNELS}, purpose one of {PURPOSES}")
        dom = spec.get("day_of_month_from")
        if dom is not None and not (isinstance(dom, int) and 1 <= dom <= 31):
            raise StrategyError(f"{source}: steps.{name}.day_of_month_from must be 1..31")
        steps[name] = Step(name, channel, purpose, dom, float(spec.get("after_hours", 0)))
    max_calls = int(doc.get("max_call_attempts", 3))
    schedules: dict[tuple[str, str], tuple[Step, ...]] = {}
    for segment, bands in (doc.get("segments") or {}).items():
        if segment not in SEGMENTS:
            raise StrategyError(f"{source}: unknown segment {segment!r} (one of {', '.join(SEGMENTS)})")
        for band, names in (bands or {}).items():
            if band not in BANDS:
                raise StrategyError(f"{source}: segments.{segment}.{band}: band one of {BANDS}")
            schedules[(segment, band)] = _schedule(names, steps, max_calls, f"{source}: segments.{segment}.{band}")
    missing = [s for s in SEGMENTS if (s, "default") not in schedules]
    if missing:
        raise StrategyError(f"{source}: no default schedule for segment(s) {', '.join(missing)}")
    bands = doc.get("age_bands") or {}
    pacing = Pacing(**(doc.get("pacing") or {}))
    return Strategy(source, steps, schedules, frozenset(doc.get("stop_on") or ()), pacing,
                    (bands.get("young") or {}).get("max_age"), (bands.get("elderly") or {}).get("min_age"),
                    max_calls, doc, _score_bands(doc.get("score_bands"), steps, max_calls, source))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100


def _score_bands(spec: object, steps: dict[str, Step], max_calls: int, source: str) -> tuple[ScoreBand, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise StrategyError(f"{source}: score_bands must be a list of {{below: SCORE, steps: [...]}}")
    out = []
    for i, item in enumerate(spec):
        where = f"{source}: score_bands[{i}]"
        if not isinstance(item, dict):
            raise StrategyError(f"{where} must be a mapping")
        unknown_keys = set(item) - {"name", "below", "at_least", "segments", "steps"}
        if unknown_keys:
            raise StrategyError(f"{where}: unknown key(s) {sorted(unknown_keys)}")
        below, at_least = item.get("below", math.inf if "at_least" in item else None), item.get("at_least", 0)
        if not (_number(below) or below == math.inf) or not _number(at_least) or not at_least < below:
            raise StrategyError(f"{where}: below and/or at_least, scores 0-100 (at_least < below)")
        segments = item.get("segments")
        if segments is not None:
            if not isinstance(segments, list) or not segments:
                raise StrategyError(f"{where}.segments must be a non-empty list of segments")
            unknown = [s for s in segments if s not in SEGMENTS]
            if unknown:
                raise StrategyError(f"{where}.segments: unknown segment(s) {unknown} (one of {', '.join(SEGMENTS)})")
        names = item.get("steps")
        by_band = names if isinstance(names, dict) else {"default": names}
        if not isinstance(by_band.get("default"), list) or not by_band["default"]:
            raise StrategyError(f"{where}.steps: a non-empty list of steps, or {{default: [...], elderly: [...]}}")
        schedules: dict[str, tuple[Step, ...]] = {}
        for band, band_names in by_band.items():
            if band not in BANDS or not isinstance(band_names, list):
                raise StrategyError(f"{where}.steps.{band}: band one of {BANDS}, each a list of steps")
            schedules[band] = _schedule(band_names, steps, max_calls, f"{where}.steps")
        name = item.get("name") or (f"below_{below:g}" if below != math.inf else f"from_{at_least:g}")
        out.append(ScoreBand(str(name), float(below), float(at_least),
                             frozenset(segments) if segments is not None else None, schedules))
    return tuple(out)


@lru_cache(maxsize=16)
def load_strategy(name_or_path: str = "default") -> Strategy:
    """A built-in name (policies/campaigns/NAME.yml) or a path to a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = STRATEGY_DIR / f"{name_or_path}.yml"
    if not path.exists():
        raise StrategyError(f"strategy not found: {name_or_path}")
    return parse_strategy(yaml.safe_load(path.read_text()), str(path.resolve()))


def _schedule(names: list[str], steps: dict[str, Step], max_calls: int, where: str) -> tuple[Step, ...]:
    """Step names as a schedule: every name known, at most `max_calls` call attempts (segment and score bands)."""
    unknown = [n for n in names if n not in steps]
    if unknown:
        raise StrategyError(f"{where}: unknown step(s) {unknown}")
    schedule = tuple(steps[n] for n in names)
    if sum(s.channel == "voice" for s in schedule) > max_calls:
        raise StrategyError(f"{where}: more than {max_calls} call attempts")
    return schedule
