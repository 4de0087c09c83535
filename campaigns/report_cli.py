"""`duebot report`: the money KPIs by branch (or segment) and week, month, quarter or year, across campaigns, beside
their seed targets; seed 003's weekly progress table, monthly summary, monthly process checks and quarterly targets
as CSV, report.json and PNG plots (campaigns/money.py has the definitions)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name}: a date YYYY-MM-DD, not {value!r}") from None


def report(
    by: Annotated[str, typer.Option(help="Group by branch (business office), segment, or none")] = "branch",
    period: Annotated[str, typer.Option(help="week, month, quarter or year")] = "month",
    since: Annotated[str | None, typer.Option(help="First day YYYY-MM-DD (default: 13 weeks, 12 months, 8 "
                                                   "quarters or 3 years back)")] = None,
    until: Annotated[str | None, typer.Option(help="Last day YYYY-MM-DD (default: today)")] = None,
    branch: Annotated[list[str] | None, typer.Option(help="Only this branch (repeatable; '' for none)")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's accounts and contacts")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the CSV tables, report.json and PNG plots")] = Path(
        "reports/kpis"),
    targets: Annotated[Path | None, typer.Option(help="A targets YAML (default: DUEBOT_KPI_TARGETS or the "
                                                      "packaged seed targets)")] = None,
    timezone: Annotated[str | None, typer.Option(help="Cut periods in this zone (default: DUEBOT_KPI_TIMEZONE)")]
    = None,
    evidence: Annotated[Path | None, typer.Option(help="The evidence log, for compliance (default: the data "
                                                       "dir's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json instead of the table")] = False,
) -> None:
    """Money KPIs by branch and period (seed 000 §2.4, seed 003): amount due and recovered, recovery rates, bad debt,
    promises kept, handling time, complaints, compliance, automated and self-service shares, beside their targets."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from duebot import clients
    from duebot.campaigns import money
    from duebot.campaigns.report import write_money_report

    if by not in money.GROUPINGS:
        raise typer.BadParameter(f"--by is one of {', '.join(money.GROUPINGS)}")
    if period not in money.PERIODS:
        raise typer.BadParameter(f"--period is one of {', '.join(money.PERIODS)}")
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise typer.BadParameter(f"--timezone: unknown zone {timezone!r}") from None
    try:
        chosen = money.load_targets(targets) if targets else None
        result = money.report(clients.account_store(), by=by, period=period, since=_day(since, "--since"),
                              until=_day(until, "--until"), branches=branch or None, campaign=campaign,
                              evidence=evidence, tz=timezone, targets=chosen)
    except (money.TargetsError, ValueError, OSError) as exc:
        console.print(f"[red]duebot report:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    files = write_money_report(result, out)
    if as_json:
        print(Path(files["json"]).read_text(encoding="utf-8"))
        return
    console.print(kpi_table(result))
    if not result.evidence_read:
        console.print("compliance: no evidence log read (unknown)", highlight=False)
    for name, path in files.items():
        console.print(f"{name}: {path}", highlight=False)


def kpi_table(result) -> Table:  # noqa: ANN001 - a campaigns.money.MoneyReport
    """The latest period's headline KPIs per group, with the targets in the last column."""
    from duebot.campaigns.money import HEADLINE, format_value

    last = result.rows[-1]["period"] if result.rows else "—"
    table = Table(title=f"KPIs by {result.by}, {result.period} {last} ({result.timezone})")
    table.add_column("kpi")
    for group in result.groups:
        table.add_column(group, justify="right")
    table.add_column("target", justify="right")
    latest = {g: result.latest(g) or {} for g in result.groups}
    for key in ("amount_due", "amount_recovered", *HEADLINE):
        t = result.targets.kpis.get(key)
        cells = []
        for g in result.groups:
            value = latest[g].get(key)
            met = t.met(value, result.period) if t else None
            mark = {True: " ✓", False: " ✗"}.get(met, "")
            cells.append(format_value(key, value, t.unit if t else None) + mark)
        table.add_row(t.label if t else key.replace("_", " "), *cells, t.shown(result.period) if t else "")
    return table
