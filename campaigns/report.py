"""`duebot campaign report`: KPIs as JSON and CSV, and three PNG plots (funnel, by segment, over time)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: servers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402

from duebot.accounts.store import AccountStore  # noqa: E402
from duebot.campaigns import kpis as k  # noqa: E402

OUTCOME_COLOURS = {"paid": "#2e7d32", "plan": "#66bb6a", "promise": "#aed581", "dispute": "#ffb300",
                   "opt_out": "#e53935", "human_queue": "#5c6bc0", "other": "#90a4ae", "no_settlement": "#cfd8dc",
                   "conversation": "#2e7d32", "answered": "#9ccc65", "delivered": "#42a5f5", "voicemail": "#ffca28",
                   "no_answer": "#bdbdbd", "failed": "#e53935", "unknown": "#6d4c41"}


def write_report(store: AccountStore, campaign_id: str, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = k.load(store, campaign_id)
    figures = k.compute(data)
    funnel = k.funnel(data)
    by_segment = k.outcomes_by_segment(data)
    size, over_time = k.outcomes_over_time(data)
    report = {"campaign_id": campaign_id, "kpis": figures, "funnel": dict(funnel),
              "outcomes_by_segment": {s: dict(c) for s, c in sorted(by_segment.items())},
              "files": {}}
    with (out / "kpis.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kpi", "value"])
        for name, value in figures.items():
            if not isinstance(value, dict):
                writer.writerow([name, "" if value is None else value])
    with (out / "outcomes_by_segment.csv").open("w", newline="") as handle:
        labels = sorted({label for c in by_segment.values() for label in c})
        writer = csv.writer(handle)
        writer.writerow(["segment", *labels])
        for segment, counts in sorted(by_segment.items()):
            writer.writerow([segment, *[counts.get(label, 0) for label in labels]])
    report["files"] = {"kpis_csv": str(out / "kpis.csv"), "segments_csv": str(out / "outcomes_by_segment.csv"),
                       "funnel_png": str(_funnel(funnel, out / "funnel.png", campaign_id)),
                       "segments_png": str(_segments(by_segment, out / "outcomes_by_segment.png")),
                       "time_png": str(_over_time(size, over_time, out / "outcomes_over_time.png"))}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    report["files"]["json"] = str(out / "report.json")
    return report


def _funnel(funnel: list[tuple[str, int]], path: Path, campaign_id: str) -> Path:
    labels, values = [s for s, _ in funnel], [n for _, n in funnel]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    bars = ax.barh(labels[::-1], values[::-1], color="#1e88e5")
    top = values[0] or 1
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:,} ({value / top:.0%})",
                va="center", fontsize=9)
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel("accounts")
    ax.set_title(f"Campaign funnel — {campaign_id}")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _segments(table: dict[str, Any], path: Path) -> Path:
    segments = sorted(table)
    labels = [lab for lab in OUTCOME_COLOURS if any(table[s].get(lab) for s in segments)]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    left = [0.0] * len(segments)
    for label in labels:
        shares = [table[s].get(label, 0) / max(1, sum(table[s].values())) for s in segments]
        ax.barh(segments, shares, left=left, label=label, color=OUTCOME_COLOURS[label])
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for i, s in enumerate(segments):
        ax.text(1.01, i, f"n={sum(table[s].values()):,}", va="center", fontsize=8)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of accounts (final outcome)")
    ax.set_title("Outcomes by segment")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _over_time(size: float, buckets: list[tuple[float, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    if buckets:
        times = [dt.datetime.fromtimestamp(t, dt.UTC) for t, _ in buckets]
        labels = [lab for lab in OUTCOME_COLOURS if any(c.get(lab) for _, c in buckets)]
        bottom = [0] * len(buckets)
        width = size / 86400 * 0.9
        for label in labels:
            values = [c.get(label, 0) for _, c in buckets]
            ax.bar(times, values, width=width, bottom=bottom, label=label, color=OUTCOME_COLOURS[label],
                   align="edge")
            bottom = [a + b for a, b in zip(bottom, values, strict=True)]
        ax.legend(ncol=4, fontsize=8, frameon=False)
        fig.autofmt_xdate()
    ax.set_ylabel(f"contact attempts per {int(size)} s")
    ax.set_xlabel("time (UTC)")
    ax.set_title("Contact outcomes over time")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
