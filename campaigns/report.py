"""`duebot campaign report`: KPIs as JSON and CSV, and three PNG plots (funnel, by segment, over time); and the
money KPIs by branch and period (`duebot report`, campaigns/money.py) as CSV tables, JSON and three PNG plots."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: servers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

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


# ------------------------------------------------------------------------------ money KPIs by branch and period

MONEY_PLOTS = {"recovery": "recovery_by_period.png", "amounts": "amounts_by_period.png",
               "targets": "kpis_vs_targets.png"}
MONEY_TABLES = ("kpis", "kpis_vs_targets", "weekly_progress", "monthly_summary", "process_checks",
                "quarterly_targets")
_MET_COLOURS = {True: "#2e7d32", False: "#e53935", None: "#90a4ae"}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, int | float) else value


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if rows:
            writer.writerow(list(rows[0]))
            for row in rows:
                writer.writerow([_cell(v) for v in row.values()])
    return path


def money_vs_targets(report: Any) -> list[dict[str, Any]]:
    """Each KPI beside its target, per group and period (long format)."""
    out = []
    for row in report.rows:
        for key, t in report.targets.kpis.items():
            if key in row:
                out.append({"group": row["group"], "period": row["period"], "kpi": key, "label": t.label,
                            "value": row[key], "target": t.for_period(report.period), "direction": t.direction,
                            "met": t.met(row[key], report.period), "source": t.source})
    return out


def write_money_report(report: Any, out: Path) -> dict[str, str]:
    """A campaigns.money.MoneyReport as CSV files, report.json and three PNG plots in `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    tables = {"kpis": report.rows, "kpis_vs_targets": money_vs_targets(report),
              "weekly_progress": report.weekly_progress, "monthly_summary": report.monthly_summary,
              "process_checks": report.process_checks, "quarterly_targets": report.quarterly_targets}
    files = {f"{name}_csv": str(_write_csv(out / f"{name}.csv", rows)) for name, rows in tables.items()}
    files["recovery_png"] = str(_money_recovery(report, out / MONEY_PLOTS["recovery"]))
    files["amounts_png"] = str(_money_amounts(report, out / MONEY_PLOTS["amounts"]))
    files["targets_png"] = str(_money_targets(report, out / MONEY_PLOTS["targets"]))
    body = report.to_json() | {"files": files}
    (out / "report.json").write_text(json.dumps(body, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    files["json"] = str(out / "report.json")
    return files


def _periods(report: Any) -> list[str]:
    return list(dict.fromkeys(r["period"] for r in report.rows))


def _money_recovery(report: Any, path: Path) -> Path:
    periods = _periods(report)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for group in report.groups[:9]:
        values = {r["period"]: r["recovery_rate_amount"] for r in report.rows if r["group"] == group}
        ys = [values.get(p) for p in periods]
        style = {"linewidth": 2.6, "color": "#102a43"} if group == "all" else {"linewidth": 1.4}
        ax.plot(periods, [float("nan") if y is None else y for y in ys], marker="o", label=group, **style)
    target = report.targets.kpis.get("recovery_rate_amount")
    goal = target.for_period(report.period) if target else None
    if goal is not None:
        ax.axhline(goal, color="#e53935", linestyle="--", linewidth=1.2, label=f"target {goal:.0%}")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylabel("recovered ÷ owed (amount)")
    ax.set_title(f"Recovery rate by {report.by} and {report.period}")
    ax.legend(ncol=5, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.tick_params(axis="x", labelsize=8, rotation=45)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _money_amounts(report: Any, path: Path) -> Path:
    periods = _periods(report)
    rows = {r["period"]: r for r in report.rows if r["group"] == "all"}
    due = [float(rows[p]["amount_due"]) if p in rows else 0.0 for p in periods]
    got = [float(rows[p]["amount_recovered"]) if p in rows else 0.0 for p in periods]
    bad = [float(rows[p]["bad_debt_at_end"]) if p in rows else 0.0 for p in periods]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    xs = range(len(periods))
    ax.bar([x - 0.2 for x in xs], due, width=0.4, label="owed", color="#90caf9")
    ax.bar([x + 0.2 for x in xs], got, width=0.4, label="recovered", color="#2e7d32")
    ax.plot(list(xs), bad, color="#e53935", marker=".", label="bad debt at end")
    ax.set_xticks(list(xs), periods, rotation=45, fontsize=8)
    ax.set_ylabel("amount")
    ax.set_title(f"Owed, recovered and bad debt by {report.period} (all)")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _money_targets(report: Any, path: Path) -> Path:
    row = report.latest("all") or {}
    items = [(key, t) for key, t in report.targets.kpis.items() if t.unit == "rate" and key in row]
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(4, len(items)) + 1.2))
    labels = [t.label for _, t in items]
    values = [row.get(key) for key, _ in items]
    colours = [_MET_COLOURS[t.met(row.get(key), report.period)] for key, t in items]
    ax.barh(labels[::-1], [0 if v is None else v for v in values[::-1]], color=colours[::-1])
    for i, (key, t) in enumerate(items[::-1]):
        goal = t.for_period(report.period)
        if goal is not None:
            ax.plot([goal, goal], [i - 0.4, i + 0.4], color="#102a43", linewidth=2)
        value = row.get(key)
        ax.text(max(0.0, value or 0.0) + 0.01, i, "—" if value is None else f"{value:.1%}", va="center", fontsize=8)
    lo = min([0.0, *[v for v in values if v is not None]])
    ax.set_xlim(lo, 1.15)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(f"KPIs against their targets (|), {row.get('period', '')}, all")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
