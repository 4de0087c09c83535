"""The report pages' plots, drawn again only when the figures they show change.

Drawing the three PNG plots of a report with matplotlib takes most of a second, and the campaign report and the
money KPI page drew them on every view. Each folder of plots now remembers a digest of the figures it was drawn
from: a page view computes the figures (a few queries), and only when their digest differs from the folder's —
a payment, an attempt, an outcome since — are the files written again. One lock per folder: pyplot is not
thread-safe, and two views of one report must not write the same files at once."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from duebot.accounts.store import AccountStore

KEEP = 64  # folders remembered (one per campaign, one per KPI filter choice)
_cache: OrderedDict[Path, tuple[str, Any]] = OrderedDict()
_locks: dict[Path, threading.Lock] = {}
_guard = threading.Lock()
draws = 0  # how many times plots were drawn (tests look)


def digest(figures: Any) -> str:
    return hashlib.sha256(json.dumps(figures, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _lock(folder: Path) -> threading.Lock:
    with _guard:
        return _locks.setdefault(folder, threading.Lock())


def _cached(folder: Path, key: str, files: list[Path]) -> Any | None:
    with _guard:
        hit = _cache.get(folder)
        if hit is None or hit[0] != key or not all(f.exists() for f in files):
            return None
        _cache.move_to_end(folder)
        return hit[1]


def _remember(folder: Path, key: str, value: Any) -> None:
    global draws
    with _guard:
        draws += 1
        _cache[folder] = (key, value)
        _cache.move_to_end(folder)
        while len(_cache) > KEEP:
            _cache.popitem(last=False)


def forget() -> None:
    """Every folder is drawn again at its next view (tests; a deleted reports directory)."""
    with _guard:
        _cache.clear()


def campaign_report(store: AccountStore, campaign_id: str, folder: Path) -> dict[str, Any]:
    """campaigns/report.py's write_report, run only when the campaign's figures changed since it last ran."""
    from duebot.campaigns import kpis as k
    from duebot.campaigns.report import write_report

    data = k.load(store, campaign_id)
    key = digest({"kpis": k.compute(data), "funnel": k.funnel(data), "segments": k.outcomes_by_segment(data),
                  "over_time": k.outcomes_over_time(data)})
    names = ("funnel.png", "outcomes_by_segment.png", "outcomes_over_time.png", "kpis.csv")
    with _lock(folder):
        report = _cached(folder, key, [folder / n for n in names])
        if report is None:
            report = write_report(store, campaign_id, folder)
            _remember(folder, key, report)
        return report


def money_report(report: Any, folder: Path) -> dict[str, str]:
    """campaigns/report.py's write_money_report for a campaigns.money.MoneyReport, run only when its figures differ
    from those the folder was drawn from (the report's time of computation aside)."""
    from duebot.campaigns.report import write_money_report

    figures = report.to_json()
    figures.pop("as_of", None)
    key = digest(figures)
    with _lock(folder):
        hit = _cached(folder, key, [])
        if hit is not None and all(Path(f).exists() for f in hit.values()):
            return hit
        files = write_money_report(report, folder)
        _remember(folder, key, files)
        return files
