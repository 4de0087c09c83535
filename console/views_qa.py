"""QA pages: transcripts with filters, a transcript with its integrity badge, unmask, audio, annotations,
exports, and the access log. Every transcript view, unmask, listen and export is an evidence `access` record."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.background import BackgroundTask

from duebot.accounts.models import CampaignAccount
from duebot.console.context import Ctx, require
from duebot.console.evidence_view import FLAGS, BundleLog, Filters, check_integrity
from duebot.console.evidence_view import transcript_view_model as _view_model
from duebot.console.i18n import N_, Msg
from duebot.console.masking import Masker, console_logger
from duebot.console.roles import Perm
from duebot.evidence.bundle import export_conversation
from duebot.evidence.records import Record

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()
LABELS = (N_("ok"), N_("missing_legal_element"), N_("wrong_outcome"), N_("tone"), N_("asr_error"),
          N_("compliance_issue"), N_("other"))
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if not _DAY.match(value):
        raise HTTPException(422, Msg("{name} must be a date YYYY-MM-DD", name=name))
    return value


@router.get("/transcripts")
def transcripts(ctx: Ctx = Depends(require(Perm.TRANSCRIPT_VIEW)), campaign: str = "",  # noqa: B008
                outcome: str = "", flag: str = "", date_from: str = "", date_to: str = "") -> Response:
    if flag and flag not in FLAGS:
        raise HTTPException(422, Msg("flag must be one of {flags}", flags=", ".join(FLAGS)))
    accounts = None
    if campaign:
        with ctx.console.store.session() as s:
            accounts = frozenset(s.scalars(select(CampaignAccount.account_id)
                                           .where(CampaignAccount.campaign_id == campaign)))
    filters = Filters(accounts, outcome or None, flag or None, _day(date_from, "from"), _day(date_to, "to"))
    rows = ctx.console.catalog.search(filters)
    return ctx.render("transcripts.html", rows=rows[:500], total=len(rows), flags=FLAGS,
                      outcomes=ctx.console.catalog.outcomes(), campaigns=ctx.console.campaigns.repo.all(),
                      chosen={"campaign": campaign, "outcome": outcome, "flag": flag, "date_from": date_from,
                              "date_to": date_to})


def _records(ctx: Ctx, conversation_id: str) -> tuple[Any, list[Record]]:
    evidence = ctx.console.catalog.refresh()
    records = evidence.records_for(conversation_id) if evidence is not None else []
    if not records:
        raise HTTPException(404, Msg("no such conversation in the evidence log"))
    return evidence, records


def _masker(ctx: Ctx, conversation_id: str) -> tuple[Masker, bool, Any]:
    summary = ctx.console.catalog.summaries.get(conversation_id)
    account = ctx.console.account(summary.account_id if summary else None)
    unmasked = ctx.can(Perm.UNMASK) and ctx.console.sessions.unmasked(ctx.session, conversation_id)
    return ctx.masker(account, unmasked), unmasked, account


def _access(ctx: Ctx, conversation_id: str, purpose: str, wait: bool = False, **extra: Any) -> Record | None:
    return ctx.console.writer.submit("access", {"user": ctx.user.username, "role": ctx.role.value,
                                                "purpose": purpose, "via": "console", **extra},
                                     conversation_id, wait=wait)


@router.get("/transcript")
def transcript(c: str, ctx: Ctx = Depends(require(Perm.TRANSCRIPT_VIEW))) -> Response:  # noqa: B008
    evidence, records = _records(ctx, c)
    masker, unmasked, account = _masker(ctx, c)
    # recorded before anything is shown: no view without its access record
    _access(ctx, c, "view", masked=not unmasked)
    integrity = check_integrity(evidence, records)
    summary = ctx.console.catalog.summaries.get(c)
    return ctx.render("transcript.html", c=c, vm=_view_model(evidence, records, masker), unmasked=unmasked,
                      integrity=integrity, summary=summary, labels=LABELS, flags=FLAGS,
                      account_id=summary.account_id if summary else None)


@router.post("/unmask")
def unmask(c: Annotated[str, Form()], reason: Annotated[str, Form()],
           ctx: Ctx = Depends(require(Perm.UNMASK))) -> Response:  # noqa: B008
    reason = reason.strip()
    if len(reason) < 5:
        raise HTTPException(422, Msg("say why you need the personal data (at least 5 characters)"))
    _records(ctx, c)
    # durable before the data is shown: an unmask that is not on record does not happen
    record = _access(ctx, c, "unmask", wait=True, reason=reason[:500])
    ctx.console.sessions.grant_unmask(ctx.session, c, reason[:500], record.index if record is not None else None)
    log.info("console: %s unmasked %s", ctx.user.username, c)
    return RedirectResponse(f"/console/transcript?c={c}", status_code=303)


@router.post("/mask")
def mask_again(c: Annotated[str, Form()], ctx: Ctx = Depends(require(Perm.TRANSCRIPT_VIEW))) -> Response:  # noqa: B008
    ctx.console.sessions.revoke_unmask(ctx.session, c)
    return RedirectResponse(f"/console/transcript?c={c}", status_code=303)


@router.get("/audio")
def audio(c: str, d: str, ctx: Ctx = Depends(require(Perm.AUDIO))) -> Response:  # noqa: B008
    evidence, records = _records(ctx, c)
    if not ctx.console.sessions.unmasked(ctx.session, c):
        raise HTTPException(403, Msg("a voice cannot be masked: unmask the transcript (a logged action) to listen"))
    if not any(ref["sha256"] == d for rec in records for ref in rec.payloads.values()):
        raise HTTPException(404, Msg("no such recording in this conversation"))
    data = evidence.payload(d)
    if data is None:
        raise HTTPException(410, Msg("the recording was erased under retention"))
    if ctx.console.sessions.first_time(ctx.session, f"listen:{c}:{d}"):
        _access(ctx, c, "listen", audio_sha256=d)
    return Response(data, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.post("/annotate")
def annotate(c: Annotated[str, Form()], label: Annotated[str, Form()], comment: Annotated[str, Form()] = "",
             turn: Annotated[str, Form()] = "", ctx: Ctx = Depends(require(Perm.ANNOTATE))) -> Response:  # noqa: B008
    if label not in LABELS:
        raise HTTPException(422, Msg("label must be one of {labels}", labels=", ".join(LABELS)))
    if turn and not turn.isdigit():
        raise HTTPException(422, Msg("turn must be a turn number"))
    _records(ctx, c)
    body: dict[str, Any] = {"author": ctx.user.username, "role": ctx.role.value, "label": label,
                            "comment": comment.strip()[:2000] or None, "turn_index": int(turn) if turn else None,
                            "via": "console"}
    ctx.console.writer.submit("annotation", body, c, wait=True)
    return RedirectResponse(f"/console/transcript?c={c}#annotations", status_code=303)


@router.get("/export/transcript")
def export_transcript(c: str, ctx: Ctx = Depends(require(Perm.TRANSCRIPT_VIEW))) -> Response:  # noqa: B008
    evidence, records = _records(ctx, c)
    masker, unmasked, _ = _masker(ctx, c)
    _access(ctx, c, "export transcript", masked=not unmasked)
    vm = _view_model(evidence, records, masker)
    lines = [f"conversation {c} ({'unmasked' if unmasked else 'masked'} for {ctx.user.username})"]
    lines += [f"[{t['started_at']}] {t['speaker']} ({t['channel']}): {t['text']}" for t in vm["turns"]]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", c)
    return PlainTextResponse("\n".join(lines) + "\n",
                             headers={"Content-Disposition": f'attachment; filename="{name}.txt"'})


class _CitedBundleLog(BundleLog):
    """The bundle's own access record names the role and cites the unmask it relies on (reason and record)."""

    def __init__(self, ctx: Ctx, grant: dict[str, Any]) -> None:
        super().__init__(ctx.console.writer)
        self.extra = {"role": ctx.role.value, "via": "console", "reason": str(grant.get("reason") or "")[:500],
                      "unmask_record": grant.get("record")}

    def append(self, kind: str, body: dict[str, Any], *, conversation_id: str) -> Record:
        return super().append(kind, {**body, **self.extra}, conversation_id=conversation_id)


@router.get("/export/bundle")
def export_bundle(c: str, ctx: Ctx = Depends(require(Perm.BUNDLE))) -> Response:  # noqa: B008
    _records(ctx, c)
    # A bundle holds the original, unmasked payloads: it needs the same logged unmask, with its reason, as
    # reading them on the page (a running unmask grant of this session and conversation).
    grant = ctx.console.sessions.unmask_grant(ctx.session, c)
    if grant is None:
        raise HTTPException(403, Msg("an evidence bundle holds the unmasked personal data: unmask the transcript "
                                     "first (a logged action with a reason), then export"))
    folder = Path(tempfile.mkdtemp(prefix="bundle-", dir=ctx.console.data_dir))
    name = re.sub(r"[^A-Za-z0-9._-]", "_", c)
    try:
        path = export_conversation(_CitedBundleLog(ctx, grant), c, folder / f"{name}.zip",
                                   user=ctx.user.username, purpose="export bundle")
    except TimeoutError as exc:
        raise HTTPException(503, str(exc)) from exc
    log.info("console: %s exported the evidence bundle of %s", ctx.user.username, c)
    return FileResponse(path, media_type="application/zip", filename=path.name,
                        background=BackgroundTask(_remove, folder))


def _remove(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()


@router.get("/access")
def access_log(ctx: Ctx = Depends(require(Perm.ACCESS_LOG)), user: str = "") -> Response:  # noqa: B008
    evidence = ctx.console.catalog.refresh()
    rows: list[dict[str, Any]] = []
    if evidence is not None:
        indices = sorted(i for s in ctx.console.catalog.summaries for i in evidence.by_conversation.get(s, ()))
        for index in reversed(indices):
            rec = evidence.get(index)
            who = rec.body.get("user") or rec.body.get("author")
            if rec.kind in ("access", "annotation") and (not user or who == user):
                rows.append({"ts": rec.ts, "kind": rec.kind, "user": who, "role": rec.body.get("role"),
                             "via": rec.body.get("via"), "what": rec.body.get("purpose") or rec.body.get("label"),
                             "reason": Masker.everything().text(rec.body.get("reason") or ""),
                             "conversation": rec.conversation_id, "index": rec.index})
                if len(rows) >= 500:
                    break
    return ctx.render("access.html", rows=rows, user=user)
