"""User administration (admin only): add, disable, enable, unlock, reset a password."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import RedirectResponse, Response

from duebot.console.context import Ctx, require
from duebot.console.masking import console_logger
from duebot.console.roles import Perm, Role, matrix_markdown
from duebot.console.users import UserError

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()


def _when(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "—"


@router.get("/users")
def users(ctx: Ctx = Depends(require(Perm.USERS)), msg: str = "", error: str = "") -> Response:  # noqa: B008
    return ctx.render("users.html", users=ctx.console.users.all(), roles=list(Role), msg=msg, error=error, when=_when,
                      matrix=matrix_markdown())


@router.post("/users")
def add_user(username: Annotated[str, Form()], role: Annotated[str, Form()], password: Annotated[str, Form()],
             ctx: Ctx = Depends(require(Perm.USERS))) -> Response:  # noqa: B008
    try:
        ctx.console.users.add(username, role, password)
    except UserError as exc:
        return RedirectResponse(f"/console/users?error={exc}", status_code=303)
    log.info("console: %s added user %s (%s)", ctx.user.username, username, role)
    return RedirectResponse(f"/console/users?msg=added {username}", status_code=303)


@router.post("/users/{username}/{action}")
def user_action(username: str, action: str, password: Annotated[str, Form()] = "",
                ctx: Ctx = Depends(require(Perm.USERS))) -> Response:  # noqa: B008
    u = ctx.console.users
    try:
        if action == "disable":
            if username == ctx.user.username:
                raise UserError("you cannot disable yourself")
            u.set_active(username, False)
            ctx.console.sessions.end_user(username)
        elif action == "enable":
            u.set_active(username, True)
        elif action == "unlock":
            u.unlock(username)
        elif action == "password":
            u.set_password(username, password)
            ctx.console.sessions.end_user(username)
        else:
            raise HTTPException(404, f"no action {action!r}")
    except UserError as exc:
        return RedirectResponse(f"/console/users?error={exc}", status_code=303)
    log.info("console: %s: %s %s", ctx.user.username, action, username)
    return RedirectResponse(f"/console/users?msg={action}: {username}", status_code=303)
