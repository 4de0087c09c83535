"""The work queue (issue 20): handoffs, callbacks, human reviews, legal cases, disputes, broken promises and
campaigns' human steps, for agents to take and close. Only the item's assignee sees the account's personal data,
and each such view is an evidence `access` record; every action is an evidence `outcome` or `annotation` record,
and collection resumes only through these actions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import RedirectResponse, Response

from duebot.accounts.models import AmountError, parse_amount, utcnow
from duebot.campaigns.worker import close_human_step
from duebot.console import work_queue
from duebot.console.context import Ctx, require
from duebot.console.i18n import N_, Msg
from duebot.console.masking import console_logger
from duebot.console.roles import Perm

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()
ACTIVE = ("open", "assigned")
RESOLUTIONS = (N_("resume"), N_("no_action"), N_("upheld"), N_("rejected"), N_("approved"), N_("legal"))


def _item(ctx: Ctx, item_id: str) -> Any:
    item = ctx.console.store.work_item(int(item_id)) if item_id.isdigit() else None
    if item is None:
        raise HTTPException(404, Msg("no such work item"))
    return item


def _conversation(item: Any) -> str:
    """Where the item's evidence records go: its conversation, else the account's console trail."""
    return item.conversation_id or f"work:{item.account_id or item.id}"


def _age(since: dt.datetime, now: dt.datetime) -> str:
    hours = int((now - work_queue.aware(since)).total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"


def _row(item: Any, now: dt.datetime) -> dict[str, Any]:
    due = work_queue.aware(item.due_at)
    return {"item": item, "overdue": item.state != "closed" and due < now, "age": _age(item.created_at, now),
            "due": due.isoformat()}


@router.get("/work")
def queue(ctx: Ctx = Depends(require(Perm.WORK_VIEW)), kind: str = "", state: str = "active") -> Response:  # noqa: B008
    if kind and kind not in work_queue.KINDS:
        raise HTTPException(422, Msg("kind must be one of {kinds}", kinds=", ".join(work_queue.KINDS)))
    if state not in ("active", "all", *work_queue.STATES):
        raise HTTPException(422, Msg("unknown state {state}", state=state))
    work_queue.sync(ctx.console.store)
    states = ACTIVE if state == "active" else None if state == "all" else (state,)
    now = utcnow()
    rows = [_row(i, now) for i in ctx.console.store.work_items(kinds=(kind,) if kind else None, states=states)]
    return ctx.render("work.html", rows=rows[:500], total=len(rows), kinds=work_queue.KINDS,
                      states=work_queue.STATES, chosen={"kind": kind, "state": state},
                      overdue=sum(r["overdue"] for r in rows))


@router.get("/work/{item_id}")
def item_page(item_id: str, ctx: Ctx = Depends(require(Perm.WORK_VIEW))) -> Response:  # noqa: B008
    item = _item(ctx, item_id)
    store = ctx.console.store
    account = ctx.console.account(item.account_id)
    mine = ctx.can(Perm.WORK_ACT) and item.assignee == ctx.user.username and item.state == "assigned"
    unmasked = mine and account is not None
    if account is not None:
        # recorded before anything is shown; an unmasked view is durable first (as an unmask is)
        ctx.console.writer.submit("access", {"user": ctx.user.username, "role": ctx.role.value,
                                             "purpose": "work item", "via": "console", "masked": not unmasked,
                                             "item": item.id, "account_id": item.account_id},
                                  _conversation(item), wait=unmasked)
        if unmasked:
            log.info("console: %s viewed the personal data of work item %s", ctx.user.username, item.id)
    masker = ctx.masker(account, unmasked)
    detail = {k: masker.text(str(v)) for k, v in (item.detail or {}).items()}
    disputes = [d for d in store.disputes(account.id) if d.status == "open"] if account is not None else []
    reviewed = ([p for p in store.promises(account.id) if p.needs_review and p.status == "open"]
                + [p for p in store.plans(account.id) if p.needs_review and p.status == "open"]
                if account is not None else [])
    return ctx.render("work_item.html", row=_row(item, utcnow()), item=item, account=account, masker=masker,
                      unmasked=unmasked, mine=mine, detail=detail, disputes=disputes, reviewed=reviewed,
                      note=masker.text(item.note or "") if item.note else "",
                      transcript=item.conversation_id if ctx.can(Perm.TRANSCRIPT_VIEW) else None)


def _mine(ctx: Ctx, item_id: str) -> Any:
    item = _item(ctx, item_id)
    if item.state != "assigned" or item.assignee != ctx.user.username:
        raise HTTPException(409, Msg("assign the item to yourself first (it is {state}, assigned to {who})",
                                     state=Msg(item.state), who=item.assignee or "—"))
    return item


def _note(note: str, required: bool = False) -> str:
    note = note.strip()[:2000]
    if required and len(note) < 5:
        raise HTTPException(422, Msg("write a note of at least 5 characters"))
    return note


def _record(ctx: Ctx, item: Any, kind: str, **body: Any) -> None:
    """The action's evidence record, made durable before the store changes."""
    base = {"author" if kind == "annotation" else "by": ctx.user.username, "role": ctx.role.value, "via": "console",
            "item": item.id, "item_kind": item.kind, "account_id": item.account_id}
    try:
        ctx.console.writer.submit(kind, {**base, **body}, _conversation(item), wait=True)
    except TimeoutError as exc:
        raise HTTPException(503, str(exc)) from exc


def _close(ctx: Ctx, item: Any, resolution: str, note: str, status: tuple[str, str] | None = None) -> Response:
    if not ctx.console.store.close_work_item(item.id, ctx.user.username, resolution, note or None, status):
        raise HTTPException(409, Msg("the item was closed meanwhile"))
    if item.kind == "human_queue":  # the campaign's step is done now, and counted
        close_human_step(ctx.console.store, ctx.console.client, item.source)
    log.info("console: %s closed work item %s (%s)", ctx.user.username, item.id, resolution)
    return RedirectResponse(f"/console/work/{item.id}?done={resolution}", status_code=303)


@router.post("/work/{item_id}/assign")
def assign(item_id: str, ctx: Ctx = Depends(require(Perm.WORK_ACT))) -> Response:  # noqa: B008
    item = _item(ctx, item_id)
    if item.state != "open":
        raise HTTPException(409, Msg("the item is {state}", state=Msg(item.state)))
    _record(ctx, item, "annotation", label="work_assigned", assignee=ctx.user.username)
    if not ctx.console.store.assign_work_item(item.id, ctx.user.username):
        raise HTTPException(409, Msg("someone took the item meanwhile"))
    return RedirectResponse(f"/console/work/{item.id}", status_code=303)


@router.post("/work/{item_id}/dispute")
def resolve_dispute(item_id: str, decision: Annotated[str, Form()], amount: Annotated[str, Form()] = "",
                    note: Annotated[str, Form()] = "",
                    ctx: Ctx = Depends(require(Perm.WORK_ACT))) -> Response:  # noqa: B008
    item = _mine(ctx, item_id)
    store = ctx.console.store
    case = (item.detail or {}).get("case_number")
    dispute = next((d for d in store.disputes(item.account_id or "") if d.case_number == case), None)
    if item.kind != "dispute" or dispute is None:
        raise HTTPException(409, Msg("this item is not an open dispute"))
    if decision not in ("upheld", "rejected"):
        raise HTTPException(422, Msg("decision must be upheld or rejected"))
    account = store.get_account(dispute.account_id)
    new_amount: Decimal | None = None
    if decision == "upheld":
        try:
            new_amount = Decimal("0.00") if amount.strip() in ("0", "0.0", "0.00") else parse_amount(amount)
        except AmountError as exc:
            raise HTTPException(422, Msg("the corrected amount owed: {error}", error=str(exc))) from exc
    note = _note(note, required=decision == "rejected")
    _record(ctx, item, "outcome", type="dispute_resolution", decision=decision, case_number=dispute.case_number,
            previous_amount=str(account.amount_due) if account else None,
            amount_due=str(new_amount) if new_amount is not None else None, note=note or None)
    if new_amount is not None:
        store.set_amount_due(dispute.account_id, new_amount)
    store.resolve_dispute(dispute.case_number, decision)  # a disputed account is open again: collection resumes
    return _close(ctx, item, decision, note)


@router.post("/work/{item_id}/review")
def review(item_id: str, decision: Annotated[str, Form()], note: Annotated[str, Form()] = "",
           ctx: Ctx = Depends(require(Perm.WORK_ACT))) -> Response:  # noqa: B008
    item = _mine(ctx, item_id)
    if item.kind != "human_review":
        raise HTTPException(409, Msg("this item is not a review"))
    if decision not in ("approved", "rejected"):
        raise HTTPException(422, Msg("decision must be approved or rejected"))
    note = _note(note)
    _record(ctx, item, "outcome", type="review_decision", decision=decision, note=note or None)
    if item.account_id:
        ctx.console.store.review_outcomes(item.account_id, approve=decision == "approved")
    return _close(ctx, item, decision, note, ("human_review", "open"))


@router.post("/work/{item_id}/legal")
def to_legal(item_id: str, note: Annotated[str, Form()] = "",
             ctx: Ctx = Depends(require(Perm.WORK_ACT))) -> Response:  # noqa: B008
    item = _mine(ctx, item_id)
    note = _note(note, required=True)
    _record(ctx, item, "outcome", type="legal_track", decided_by_person=True, note=note)
    account = ctx.console.account(item.account_id)
    status = (account.status, "legal") if account is not None and account.status not in ("paid", "closed") else None
    return _close(ctx, item, "legal", note, status)


@router.post("/work/{item_id}/close")
def close(item_id: str, resolution: Annotated[str, Form()], note: Annotated[str, Form()] = "",
          ctx: Ctx = Depends(require(Perm.WORK_ACT))) -> Response:  # noqa: B008
    item = _mine(ctx, item_id)
    if resolution not in ("resume", "no_action"):
        raise HTTPException(422, Msg("resolution must be resume or no_action"))
    note = _note(note, required=True)
    _record(ctx, item, "outcome", type="work_item_closed", resolution=resolution, note=note)
    return _close(ctx, item, resolution, note, ("human_review", "open") if resolution == "resume" else None)
