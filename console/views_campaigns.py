"""Campaign pages: list, import (with row errors), preview with gate reasons, control, live progress, KPIs."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from duebot.campaigns.http import strategies, strategy_source
from duebot.campaigns.service import CampaignError
from duebot.campaigns.strategy import StrategyError
from duebot.console import plots
from duebot.console.context import Ctx, require
from duebot.console.i18n import Msg
from duebot.console.masking import console_logger
from duebot.console.roles import Perm
from duebot.settings import load_settings

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()
PLOTS = {"funnel": "funnel.png", "segments": "outcomes_by_segment.png", "time": "outcomes_over_time.png"}
ACTIONS = ("launch", "pause", "resume", "cancel")


def _when(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "—"


def _campaign(ctx: Ctx, campaign_id: str) -> Any:
    campaign = ctx.console.campaigns.repo.get(campaign_id)
    if campaign is None:
        raise HTTPException(404, Msg("no campaign {campaign!r}", campaign=campaign_id))
    return campaign


@router.get("/campaigns")
def campaign_list(ctx: Ctx = Depends(require(Perm.CAMPAIGN_VIEW))) -> Response:  # noqa: B008
    repo = ctx.console.campaigns.repo
    rows = [{"id": c.id, "name": c.name, "status": c.status, "created": _when(c.created_at),
             "launched": _when(c.launched_at), "accounts": sum(repo.account_states(c.id).values())}
            for c in sorted(ctx.console.campaigns.repo.all(), key=lambda c: c.created_at, reverse=True)]
    return ctx.render("campaigns.html", campaigns=rows)


@router.get("/campaigns/import")
def import_form(ctx: Ctx = Depends(require(Perm.CAMPAIGN_IMPORT))) -> Response:  # noqa: B008
    return ctx.render("import.html", strategies=_strategies(), result=None, error=None)


def _strategies() -> list[str]:
    """By name only: the packaged strategies and those registered in DUEBOT_STRATEGIES (same as the API)."""
    return list(strategies())


def _field(form: Any, name: str, default: str, longest: int = 200) -> str:
    value = form.get(name)
    return value[:longest] if isinstance(value, str) else default


@router.post("/campaigns/import")
async def import_upload(request: Request, ctx: Ctx = Depends(require(Perm.CAMPAIGN_IMPORT))) -> Response:  # noqa: B008
    # The form is read here, after the session, role and CSRF checks: an anonymous upload is refused unread.
    limit = load_settings().api.max_upload_bytes
    async with request.form(max_files=1, max_fields=10) as form:
        strategy, name = _field(form, "strategy", "default", 64), _field(form, "name", "")
        region = _field(form, "region", "US", 2)
        upload = form.get("file")
        data = await upload.read(limit + 1) if isinstance(upload, UploadFile) else b""
        filename = (upload.filename if isinstance(upload, UploadFile) else None) or "upload.csv"
    if strategy not in _strategies():
        raise HTTPException(422, Msg("strategy must be one of {strategies}", strategies=", ".join(_strategies())))
    suffix = Path(filename).suffix.lower()
    error = None
    if not data:
        error = Msg("the file is empty")
    elif len(data) > limit:
        error = Msg("the file is larger than {mb} MB", mb=limit // 1024 // 1024)
    elif suffix not in (".csv", ".jsonl"):
        error = Msg("upload a .csv or .jsonl file")
    if error:
        return ctx.render("import.html", strategies=_strategies(), result=None, error=error, status_code=422)
    folder = ctx.console.data_dir / "campaign_imports"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as handle:
        handle.write(data)
    try:
        imported = ctx.console.campaigns.import_file(Path(handle.name), strategy_source(strategy),
                                                     name.strip() or Path(filename).stem, region)
    except (ValueError, StrategyError) as exc:
        masked = ctx.masker().text(str(exc))
        log.warning("console import by %s refused: %s", ctx.user.username, masked)
        return ctx.render("import.html", strategies=_strategies(), result=None, error=masked, status_code=422)
    r = imported.report
    masker = ctx.masker()  # row errors quote the rows' values: names, phones, amounts
    errors = [{"line": line, "reason": masker.text(reason)} for line, reason in r.errors]
    log.info("console import by %s: %s, %d imported, %d row errors", ctx.user.username, imported.campaign_id,
             r.imported, len(errors))
    result = {"campaign_id": imported.campaign_id, "created": imported.created, "added": imported.added,
              "imported": r.imported, "new": r.created, "updated": r.updated, "errors": errors}
    return ctx.render("import.html", strategies=_strategies(), result=result, error=None)


def _progress(ctx: Ctx, campaign_id: str) -> dict[str, Any]:
    status = ctx.console.campaigns.status(campaign_id)
    for step in status["steps"]:
        step["percent"] = round(100 * step["completed"] / step["accounts"]) if step["accounts"] else 0
    status["last_contact"] = _when(status["last_contact_at"])
    return status


@router.get("/campaigns/{campaign_id}")
def campaign_page(campaign_id: str, done: str = "", queued: int | None = None,
                  ctx: Ctx = Depends(require(Perm.CAMPAIGN_VIEW))) -> Response:  # noqa: B008
    campaign = _campaign(ctx, campaign_id)
    # what was just done comes back as an action the page names in the reader's language, never as text to show
    return ctx.render("campaign.html", campaign=campaign, progress=_progress(ctx, campaign_id),
                      done=done if done in ACTIONS else "", queued=queued if done in ACTIONS else None,
                      actions=_available(campaign.status), when=_when)


def _available(status: str) -> list[str]:
    moves = {"draft": ["launch", "cancel"], "running": ["pause", "cancel"], "paused": ["resume", "cancel"]}
    return moves.get(status, [])


@router.get("/campaigns/{campaign_id}/progress")
def campaign_progress(campaign_id: str, ctx: Ctx = Depends(require(Perm.CAMPAIGN_VIEW))) -> Response:  # noqa: B008
    _campaign(ctx, campaign_id)
    return ctx.render("_progress.html", progress=_progress(ctx, campaign_id))


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(campaign_id: str, action: str,
                    ctx: Ctx = Depends(require(Perm.CAMPAIGN_CONTROL))) -> Response:  # noqa: B008
    if action not in ACTIONS:
        raise HTTPException(404, Msg("no action {action!r}", action=action))
    _campaign(ctx, campaign_id)
    service = ctx.console.campaigns
    try:
        result = getattr(service, action)(campaign_id)
    except CampaignError as exc:
        raise HTTPException(409, str(exc)) from exc
    log.info("console: %s %s campaign %s", ctx.user.username, action, campaign_id)
    queued = f"&queued={result}" if isinstance(result, int) and not isinstance(result, bool) else ""
    return RedirectResponse(f"/console/campaigns/{campaign_id}?done={action}{queued}", status_code=303)


@router.get("/campaigns/{campaign_id}/preview")
def campaign_preview(campaign_id: str, ctx: Ctx = Depends(require(Perm.CAMPAIGN_PREVIEW))) -> Response:  # noqa: B008
    from duebot.campaigns.preview import preview

    campaign = _campaign(ctx, campaign_id)
    result = preview(ctx.console.store, campaign_id, campaign.strategy)
    return ctx.render("preview.html", campaign=campaign, summary=result.summary(),
                      rows=[row.to_json() for row in result.rows[:200]], total=len(result.rows))


def _report_dir(ctx: Ctx, campaign_id: str) -> Path:
    return ctx.console.data_dir / "reports" / campaign_id


def _report(ctx: Ctx, campaign_id: str) -> dict[str, Any]:
    """The campaign's report (KPIs, funnel, outcomes by segment), its CSV and three plots in its folder: drawn
    again only when the figures they show changed (console/plots.py), not on every page view."""
    return plots.campaign_report(ctx.console.store, campaign_id, _report_dir(ctx, campaign_id))


@router.get("/campaigns/{campaign_id}/report")
def campaign_report(campaign_id: str, ctx: Ctx = Depends(require(Perm.CAMPAIGN_VIEW))) -> Response:  # noqa: B008
    campaign = _campaign(ctx, campaign_id)
    report = _report(ctx, campaign_id)
    kpis = {k: v for k, v in report["kpis"].items() if not isinstance(v, dict)}
    return ctx.render("report.html", campaign=campaign, kpis=kpis, funnel=report["funnel"],
                      by_segment=report["outcomes_by_segment"], plots=list(PLOTS))


@router.get("/campaigns/{campaign_id}/report/{plot}.png")
def campaign_plot(campaign_id: str, plot: str, ctx: Ctx = Depends(require(Perm.CAMPAIGN_VIEW))) -> Response:  # noqa: B008
    _campaign(ctx, campaign_id)
    if plot not in PLOTS:
        raise HTTPException(404, Msg("plot is one of {plots}", plots=", ".join(PLOTS)))
    path = _report_dir(ctx, campaign_id) / PLOTS[plot]
    if not path.exists():  # the page draws them (when their figures changed); a plot asked for on its own is drawn here
        _report(ctx, campaign_id)
    return FileResponse(path, media_type="image/png")


@router.get("/campaigns/{campaign_id}/kpis.csv")
def campaign_csv(campaign_id: str, ctx: Ctx = Depends(require(Perm.CAMPAIGN_VIEW))) -> Response:  # noqa: B008
    _campaign(ctx, campaign_id)
    _report(ctx, campaign_id)  # KPIs only: no personal data
    return FileResponse(_report_dir(ctx, campaign_id) / "kpis.csv", media_type="text/csv",
                        filename=f"{campaign_id}-kpis.csv")
