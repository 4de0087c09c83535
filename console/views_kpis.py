"""The money KPI page: KPIs by branch (or segment) and week, month, quarter or year, beside their seed targets, with
seed 003's weekly progress table and monthly process checks, three plots and every table as CSV (and JSON).
Aggregates only: no account is named, so it needs no masking; campaign managers, auditors and admins see it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response

from duebot.campaigns import money
from duebot.campaigns.branches import branch_names
from duebot.campaigns.report import MONEY_PLOTS, MONEY_TABLES
from duebot.console import plots
from duebot.console.context import Ctx, require
from duebot.console.i18n import Msg
from duebot.console.masking import console_logger
from duebot.console.roles import Perm

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()


def _filters(by: str, period: str, branch: str, campaign: str, since: str, until: str) -> dict[str, str]:
    if by not in money.GROUPINGS:
        raise HTTPException(422, Msg("by is one of {choices}", choices=", ".join(money.GROUPINGS)))
    if period not in money.PERIODS:
        raise HTTPException(422, Msg("period is one of {choices}", choices=", ".join(money.PERIODS)))
    for name, value in (("since", since), ("until", until)):
        if value:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise HTTPException(422, Msg("{name} must be a date YYYY-MM-DD", name=name)) from None
    if since and until and since > until:
        raise HTTPException(422, Msg("since is after until"))
    return {"by": by, "period": period, "branch": branch[:64], "campaign": campaign[:32], "since": since,
            "until": until}


def _chosen(by: str = "branch", period: str = "week", branch: str = "", campaign: str = "", since: str = "",
            until: str = "") -> dict[str, str]:
    return _filters(by, period, branch, campaign, since, until)


def _folder(ctx: Ctx, chosen: dict[str, str]) -> Path:
    key = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]
    return ctx.console.data_dir / "reports" / "kpis" / key


def _build(ctx: Ctx, chosen: dict[str, str]) -> tuple[money.MoneyReport, dict[str, str]]:
    if chosen["campaign"] and ctx.console.campaigns.repo.get(chosen["campaign"]) is None:
        raise HTTPException(404, Msg("no campaign {campaign!r}", campaign=chosen["campaign"]))
    evidence = ctx.console.reader.log()  # the console's snapshot of the evidence log (None: none yet)
    try:
        report = money.report(ctx.console.store, by=chosen["by"], period=chosen["period"],
                              since=dt.date.fromisoformat(chosen["since"]) if chosen["since"] else None,
                              until=dt.date.fromisoformat(chosen["until"]) if chosen["until"] else None,
                              branches=[chosen["branch"]] if chosen["branch"] else None,
                              campaign=chosen["campaign"] or None,
                              evidence=evidence if evidence is not None else False)
    except (ValueError, money.TargetsError) as exc:
        raise HTTPException(422, str(exc)) from exc
    # CSV, JSON and plots are written again only when the figures changed since the last view (console/plots.py)
    return report, plots.money_report(report, _folder(ctx, chosen))


def _query(chosen: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in chosen.items() if v})


@router.get("/kpis")
def kpi_page(ctx: Ctx = Depends(require(Perm.KPI_VIEW)),  # noqa: B008 - the login first: then the filters
             chosen: dict[str, str] = Depends(_chosen)) -> Response:  # noqa: B008
    report, _ = _build(ctx, chosen)
    latest = {g: report.latest(g) or {} for g in report.groups}
    keys = ("amount_due", "amount_recovered", *money.HEADLINE, "new_bad_debt_rate", "handling_hours_median",
            "complaints", "complaints_per_month", "complaints_change_yoy", "gate_pass_rate", "opt_out_honoured_rate",
            "self_service_share_of_reached", "answer_rate", "first_contact_success")
    table = []
    for key in keys:
        t = report.targets.kpis.get(key)
        cells = []
        for g in report.groups:
            value = latest[g].get(key)
            cells.append({"shown": money.format_value(key, value, t.unit if t else None),
                          "met": t.met(value, report.period) if t else None})
        table.append({"key": key, "label": t.label if t else key.replace("_", " "), "cells": cells,
                      "target": t.shown(report.period) if t else "", "source": t.source if t else ""})
    fmt = money.format_value
    weekly = [r | {"shown": {k: fmt(k, v) for k, v in r.items()}} for r in report.weekly_progress]
    checks = [r | {"shown": {k: fmt(k, v) for k, v in r.items()}} for r in report.process_checks]
    log.info("console: %s read the KPI page (%s)", ctx.user.username, _query(chosen))
    return ctx.render("kpis.html", report=report, chosen=chosen, query=_query(chosen), headline=report.headline(),
                      latest_period=(report.latest() or {}).get("period", "—"), table=table, weekly=weekly,
                      checks=checks, plots=list(MONEY_PLOTS), tables=MONEY_TABLES,
                      branches=branch_names(ctx.console.store), campaigns=ctx.console.campaigns.repo.all(),
                      groupings=money.GROUPINGS, periods=money.PERIODS,
                      targets=sorted(report.targets.kpis.values(), key=lambda t: t.key))


@router.get("/kpis/report.json")
def kpi_json(ctx: Ctx = Depends(require(Perm.KPI_VIEW)),  # noqa: B008
             chosen: dict[str, str] = Depends(_chosen)) -> Response:  # noqa: B008
    report, files = _build(ctx, chosen)
    return JSONResponse(json.loads(json.dumps(report.to_json() | {"files": files}, ensure_ascii=False, default=str)))


@router.get("/kpis/{name}.csv")
def kpi_csv(name: str, ctx: Ctx = Depends(require(Perm.KPI_VIEW)),  # noqa: B008
            chosen: dict[str, str] = Depends(_chosen)) -> Response:  # noqa: B008
    if name not in MONEY_TABLES:
        raise HTTPException(404, Msg("table is one of {tables}", tables=", ".join(MONEY_TABLES)))
    _, files = _build(ctx, chosen)
    return FileResponse(files[f"{name}_csv"], media_type="text/csv", filename=f"{name}.csv")


@router.get("/kpis/{plot}.png")
def kpi_plot(plot: str, ctx: Ctx = Depends(require(Perm.KPI_VIEW)),  # noqa: B008
             chosen: dict[str, str] = Depends(_chosen)) -> Response:  # noqa: B008
    if plot not in MONEY_PLOTS:
        raise HTTPException(404, Msg("plot is one of {plots}", plots=", ".join(MONEY_PLOTS)))
    path = _folder(ctx, chosen) / MONEY_PLOTS[plot]
    if not path.exists():  # the page draws them; a plot asked for on its own is drawn here
        _build(ctx, chosen)
    return FileResponse(path, media_type="image/png")
