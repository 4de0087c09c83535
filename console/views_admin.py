"""User administration (admin only): add, disable (after a confirmation), enable, unlock, reset a password."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import RedirectResponse, Response

from duebot.console.context import Ctx, require
from duebot.console.i18n import Msg
from duebot.console.masking import console_logger
from duebot.console.roles import Perm, Role, matrix_markdown
from duebot.console.users import UserError

router = APIRouter(tags=["console"], include_in_schema=False)
log = console_logger()
ACTIONS = ("disable", "enable", "unlock", "password")


def _when(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "—"


def _page(ctx: Ctx, done: str = "", subject: str = "", error: str | None = None, status_code: int = 200) -> Response:
    return ctx.render("users.html", status_code=status_code, users=ctx.console.users.all(), roles=list(Role),
                      done=done, subject=subject, error=error, when=_when, matrix=matrix_markdown())


@router.get("/users")
def users(ctx: Ctx = Depends(require(Perm.USERS)), done: str = "", u: str = "") -> Response:  # noqa: B008
    # What was done comes back as a word the page knows (and the user it was done to), never as text to show.
    return _page(ctx, done if done in ("added", *ACTIONS) else "", u[:64])


def _done(action: str, username: str) -> Response:
    return RedirectResponse("/console/users?" + urlencode({"done": action, "u": username}), status_code=303)


@router.post("/users")
def add_user(username: Annotated[str, Form()], role: Annotated[str, Form()], password: Annotated[str, Form()],
             ctx: Ctx = Depends(require(Perm.USERS))) -> Response:  # noqa: B008
    try:
        user = ctx.console.users.add(username, role, password)
    except UserError as exc:
        return _page(ctx, error=exc.args[0], status_code=422)
    log.info("console: %s added user %s (%s)", ctx.user.username, user.username, user.role.value)
    return _done("added", user.username)


@router.post("/users/{username}/{action}")
def user_action(username: str, action: str, password: Annotated[str, Form()] = "",
                confirm: Annotated[str, Form()] = "",
                ctx: Ctx = Depends(require(Perm.USERS))) -> Response:  # noqa: B008
    if action not in ACTIONS:
        raise HTTPException(404, Msg("no action {action!r}", action=action))
    u = ctx.console.users
    target = u.get(username)
    if target is None:
        raise HTTPException(404, Msg("no user {name!r}", name=username))
    try:
        if action == "disable":
            if target.active and u.last_active_admin(username):
                raise UserError(Msg("{name} is the last active admin: add or enable another admin first",
                                    name=username))
            if confirm != "yes":  # the button asks first; this page says what disabling does
                return ctx.render("user_disable.html", target=target)
            u.set_active(username, False)
            ctx.console.sessions.end_user(username)
        elif action == "enable":
            u.set_active(username, True)
        elif action == "unlock":
            u.unlock(username)
        else:
            u.set_password(username, password)
            ctx.console.sessions.end_user(username)
    except UserError as exc:
        return _page(ctx, error=exc.args[0], status_code=422)
    log.info("console: %s: %s %s", ctx.user.username, action, username)
    if action == "disable" and username == ctx.user.username:  # their own session ended with the others
        return RedirectResponse("/console/login", status_code=303)
    return _done(action, username)
