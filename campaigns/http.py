"""The campaign API (same operations as `duebot campaign …`) and GET /metrics (Prometheus)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from duebot.accounts.store import AccountStore
from duebot.campaigns.metrics import CampaignCollector
from duebot.campaigns.service import CampaignError, Campaigns, redis_client
from duebot.config import Settings

router = APIRouter(tags=["campaigns"])
_campaigns: Campaigns | None = None
_registry: CollectorRegistry | None = None
PLOTS = {"funnel": "funnel.png", "segments": "outcomes_by_segment.png", "time": "outcomes_over_time.png"}


def set_campaigns(campaigns: Campaigns) -> None:
    """Tests and the service wire the store and Redis here; by default both come from the environment."""
    global _campaigns, _registry
    _campaigns, _registry = campaigns, None


def _get() -> Campaigns:
    global _campaigns
    if _campaigns is None:
        _campaigns = Campaigns(AccountStore(), redis_client())
    return _campaigns


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except CampaignError as exc:
        code = 404 if str(exc).startswith("no campaign") else 409
        raise HTTPException(code, str(exc)) from exc


@router.post("/campaigns/import", summary="Import accounts (CSV or JSON Lines) and create a campaign")
async def import_campaign(file: Annotated[UploadFile, File(description="CSV or .jsonl")],
                          strategy: str = "default", name: str | None = None, region: str = "US") -> dict[str, Any]:
    suffix = Path(file.filename or "upload.csv").suffix or ".csv"
    folder = Settings.from_env().data_dir / "campaign_imports"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as handle:
        handle.write(await file.read())
    try:
        imported = _get().import_file(Path(handle.name), strategy, name or Path(file.filename or "upload").stem,
                                      region)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    r = imported.report
    return {"campaign_id": imported.campaign_id, "created": imported.created, "added": imported.added,
            "imported": r.imported, "new_accounts": r.created, "updated_accounts": r.updated,
            "errors": [{"line": line, "reason": reason} for line, reason in r.errors]}


@router.get("/campaigns", summary="List campaigns")
def list_campaigns() -> list[dict[str, Any]]:
    return [{"campaign_id": c.id, "name": c.name, "status": c.status, "created_at": c.created_at}
            for c in _get().repo.all()]


@router.get("/campaigns/{campaign_id}/preview", summary="Next step and gate decision per account, by reason code")
def preview_campaign(campaign_id: str, limit: Annotated[int, Query(ge=0, le=10000)] = 100) -> dict[str, Any]:
    from duebot.campaigns.preview import preview

    c = _get()
    campaign = c.repo.get(campaign_id)
    if campaign is None:
        raise HTTPException(404, f"no campaign {campaign_id!r}")
    result = preview(c.store, campaign_id, campaign.strategy)
    return {"summary": result.summary(), "accounts": [row.to_json() for row in result.rows[:limit]]}


@router.post("/campaigns/{campaign_id}/launch", summary="Launch: plan first steps and enqueue what is due")
def launch_campaign(campaign_id: str) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "enqueued": _call(_get().launch, campaign_id), "status": "running"}


@router.post("/campaigns/{campaign_id}/pause", summary="Stop new contacts within a second")
def pause_campaign(campaign_id: str) -> dict[str, str]:
    _call(_get().pause, campaign_id)
    return {"campaign_id": campaign_id, "status": "paused"}


@router.post("/campaigns/{campaign_id}/resume", summary="Continue a paused campaign")
def resume_campaign(campaign_id: str) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "enqueued": _call(_get().resume, campaign_id), "status": "running"}


@router.post("/campaigns/{campaign_id}/cancel", summary="Stop for good")
def cancel_campaign(campaign_id: str) -> dict[str, str]:
    _call(_get().cancel, campaign_id)
    return {"campaign_id": campaign_id, "status": "cancelled"}


@router.get("/campaigns/{campaign_id}/status", summary="Progress per step and channel, queue, workers")
def campaign_status(campaign_id: str) -> dict[str, Any]:
    return _call(_get().status, campaign_id)


def _report_dir(campaign_id: str) -> Path:
    return Settings.from_env().data_dir / "reports" / campaign_id


@router.get("/campaigns/{campaign_id}/report", summary="KPIs and results (also writes CSV and PNG plots)")
def campaign_report(campaign_id: str) -> dict[str, Any]:
    from duebot.campaigns.report import write_report

    try:
        return write_report(_get().store, campaign_id, _report_dir(campaign_id))
    except KeyError as exc:
        raise HTTPException(404, f"no campaign {campaign_id!r}") from exc


@router.get("/campaigns/{campaign_id}/report/{plot}.png", summary="A report plot: funnel, segments or time",
            response_class=FileResponse)
def campaign_plot(campaign_id: str, plot: str) -> FileResponse:
    if plot not in PLOTS:
        raise HTTPException(404, f"plot is one of {', '.join(PLOTS)}")
    path = _report_dir(campaign_id) / PLOTS[plot]
    if not path.exists():
        campaign_report(campaign_id)
    return FileResponse(path, media_type="image/png")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    global _registry
    if _registry is None:
        _registry = CollectorRegistry()
        _registry.register(CampaignCollector(_get()))
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)
