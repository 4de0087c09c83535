"""The campaign API (same operations as `duebot campaign …`) and GET /metrics (Prometheus).

Every route takes an API token (`Authorization: Bearer …`, `duebot console token create --user NAME`) and
acts with the role of the token's user: the console's role matrix decides (console/roles.py). The token is
checked before a byte of the body is read. Strategies are chosen by name only (the packaged ones and those
registered in DUEBOT_STRATEGIES), never by a path on the server."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Security
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from starlette.datastructures import UploadFile

from duebot import clients
from duebot.campaigns.metrics import CampaignCollector
from duebot.campaigns.service import CampaignError, Campaigns
from duebot.campaigns.strategy import STRATEGY_DIR, StrategyError
from duebot.console.api_auth import AUTH_RESPONSES, require_token
from duebot.console.masking import Known, Masker, console_logger
from duebot.console.roles import VISIBLE_BY_DEFAULT, Perm
from duebot.console.tokens import Caller
from duebot.settings import load_settings

router = APIRouter(tags=["campaigns"], responses=AUTH_RESPONSES)
log = console_logger()
_campaigns: Campaigns | None = None
_registry: CollectorRegistry | None = None
PLOTS = {"funnel": "funnel.png", "segments": "outcomes_by_segment.png", "time": "outcomes_over_time.png"}
UPLOAD_SUFFIXES = (".csv", ".jsonl")


def set_campaigns(campaigns: Campaigns) -> None:
    """Tests and the service wire the store and Redis here; by default both come from the environment."""
    global _campaigns, _registry
    _campaigns, _registry = campaigns, None


def _get() -> Campaigns:
    global _campaigns
    if _campaigns is None:
        _campaigns = Campaigns(clients.account_store(), clients.redis_client())
    return _campaigns


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except CampaignError as exc:
        code = 404 if str(exc).startswith("no campaign") else 409
        raise HTTPException(code, str(exc)) from exc


def strategies() -> dict[str, str]:
    """Strategy name -> what `load_strategy` is given: the packaged names, and the operator's registered files."""
    out = {p.stem: p.stem for p in sorted(STRATEGY_DIR.glob("*.yml"))}
    out.update({name: str(path) for name, path in load_settings().api.registered_strategies.items()})
    return out


def strategy_source(name: str) -> str:
    """The registered strategy of this name; 422 naming the choices (never the input) otherwise."""
    known = strategies()
    if name not in known:
        raise HTTPException(422, f"strategy must be one of {', '.join(known)}")
    return known[name]


def _principal(caller: Caller) -> str:
    return f"{caller.user.username} (token {caller.token_id})"


def _campaign_or_404(campaign_id: str) -> Any:
    campaign = _get().repo.get(campaign_id)
    if campaign is None:
        raise HTTPException(404, "no such campaign")
    return campaign


IMPORT_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "CSV or .jsonl"}}}}}}}


@router.post("/campaigns/import", summary="Import accounts (CSV or JSON Lines) and create a campaign",
             openapi_extra=IMPORT_BODY, responses={413: {"description": "Upload over DUEBOT_MAX_UPLOAD_BYTES"}})
async def import_campaign(
        request: Request, caller: Annotated[Caller, Security(require_token(Perm.CAMPAIGN_IMPORT))],
        strategy: Annotated[str, Query(description="A strategy name (GET /campaigns/strategies)")] = "default",
        name: Annotated[str | None, Query(max_length=200)] = None,
        region: Annotated[str | None, Query(min_length=2, max_length=2,
                                            description="Region of numbers without +country code (default: the "
                                                        "default pack's, CN)")] = None) -> dict[str, Any]:
    # The form is read here, after the token was checked: an anonymous upload is refused unread.
    source = strategy_source(strategy)
    limit = load_settings().api.max_upload_bytes
    async with request.form(max_files=1, max_fields=5) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "send the accounts as the multipart field 'file'")
        data = await upload.read(limit + 1)
        filename = upload.filename or "upload.csv"
    if len(data) > limit:
        raise HTTPException(413, f"the upload is larger than {limit} bytes")
    suffix = Path(filename).suffix.lower() or ".csv"
    if suffix not in UPLOAD_SUFFIXES:
        raise HTTPException(422, "upload a .csv or .jsonl file")
    folder = load_settings().data_dir / "campaign_imports"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as handle:
        handle.write(data)
    masker = Masker(VISIBLE_BY_DEFAULT[caller.user.role], Known())  # row errors quote the rows' values
    try:
        imported = _get().import_file(Path(handle.name), source, name or Path(filename).stem, region)
    except (ValueError, StrategyError) as exc:
        raise HTTPException(422, masker.text(str(exc))) from exc
    r = imported.report
    log.info("api: %s imported %s: %d rows, %d row errors", _principal(caller), imported.campaign_id, r.imported,
             len(r.errors))
    return {"campaign_id": imported.campaign_id, "created": imported.created, "added": imported.added,
            "imported": r.imported, "new_accounts": r.created, "updated_accounts": r.updated,
            "errors": [{"line": line, "reason": masker.text(reason)} for line, reason in r.errors]}


@router.get("/campaigns", summary="List campaigns", dependencies=[Security(require_token(Perm.CAMPAIGN_VIEW))])
def list_campaigns() -> list[dict[str, Any]]:
    return [{"campaign_id": c.id, "name": c.name, "status": c.status, "created_at": c.created_at}
            for c in _get().repo.all()]


@router.get("/campaigns/strategies", summary="The strategy names an import may use",
            dependencies=[Security(require_token(Perm.CAMPAIGN_IMPORT))])
def list_strategies() -> list[str]:
    return list(strategies())


@router.get("/campaigns/{campaign_id}/preview", summary="Next step and gate decision per account, by reason code",
            dependencies=[Security(require_token(Perm.CAMPAIGN_PREVIEW))])
def preview_campaign(campaign_id: str, limit: Annotated[int, Query(ge=0, le=10000)] = 100) -> dict[str, Any]:
    from duebot.campaigns.preview import preview

    c = _get()
    campaign = _campaign_or_404(campaign_id)
    result = preview(c.store, campaign_id, campaign.strategy)
    return {"summary": result.summary(), "accounts": [row.to_json() for row in result.rows[:limit]]}


def _control(action: str, campaign_id: str, caller: Caller) -> Any:
    result = _call(getattr(_get(), action), campaign_id)
    log.info("api: %s: %s campaign %s", _principal(caller), action, campaign_id)
    return result


Controller = Annotated[Caller, Security(require_token(Perm.CAMPAIGN_CONTROL))]


@router.post("/campaigns/{campaign_id}/launch", summary="Launch: plan first steps and enqueue what is due")
def launch_campaign(campaign_id: str, caller: Controller) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "enqueued": _control("launch", campaign_id, caller), "status": "running"}


@router.post("/campaigns/{campaign_id}/pause", summary="Stop new contacts within a second")
def pause_campaign(campaign_id: str, caller: Controller) -> dict[str, str]:
    _control("pause", campaign_id, caller)
    return {"campaign_id": campaign_id, "status": "paused"}


@router.post("/campaigns/{campaign_id}/resume", summary="Continue a paused campaign")
def resume_campaign(campaign_id: str, caller: Controller) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "enqueued": _control("resume", campaign_id, caller), "status": "running"}


@router.post("/campaigns/{campaign_id}/cancel", summary="Stop for good")
def cancel_campaign(campaign_id: str, caller: Controller) -> dict[str, str]:
    _control("cancel", campaign_id, caller)
    return {"campaign_id": campaign_id, "status": "cancelled"}


@router.get("/campaigns/{campaign_id}/status", summary="Progress per step and channel, queue, workers",
            dependencies=[Security(require_token(Perm.CAMPAIGN_VIEW))])
def campaign_status(campaign_id: str) -> dict[str, Any]:
    return _call(_get().status, campaign_id)


def _report_dir(campaign_id: str) -> Path:
    return load_settings().data_dir / "reports" / campaign_id


def _report(campaign_id: str) -> dict[str, Any]:
    from duebot.campaigns.report import write_report

    _campaign_or_404(campaign_id)  # a known id, before any path is built from it
    try:
        return write_report(_get().store, campaign_id, _report_dir(campaign_id))
    except KeyError as exc:
        raise HTTPException(404, "no such campaign") from exc


@router.get("/campaigns/{campaign_id}/report", summary="KPIs and results (also writes CSV and PNG plots)",
            dependencies=[Security(require_token(Perm.CAMPAIGN_VIEW))])
def campaign_report(campaign_id: str) -> dict[str, Any]:
    return _report(campaign_id)


@router.get("/campaigns/{campaign_id}/report/{plot}.png", summary="A report plot: funnel, segments or time",
            response_class=FileResponse, dependencies=[Security(require_token(Perm.CAMPAIGN_VIEW))])
def campaign_plot(campaign_id: str, plot: str) -> FileResponse:
    if plot not in PLOTS:
        raise HTTPException(404, f"plot is one of {', '.join(PLOTS)}")
    _campaign_or_404(campaign_id)
    path = _report_dir(campaign_id) / PLOTS[plot]
    if not path.exists():
        _report(campaign_id)
    return FileResponse(path, media_type="image/png")


@router.get("/metrics", summary="Prometheus metrics (campaign counters; no personal data)", response_class=Response,
            dependencies=[Security(require_token(Perm.METRICS))])
def metrics() -> Response:
    global _registry
    if _registry is None:
        _registry = CollectorRegistry()
        _registry.register(CampaignCollector(_get()))
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)
