"""`duebot console …`: console users from the command line (the first admin has to come from somewhere)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from duebot.accounts.store import AccountStore
from duebot.console.roles import Role, matrix_markdown
from duebot.console.tokens import ApiTokens
from duebot.console.users import UserError, Users

T = TypeVar("T")

app = typer.Typer(help="The web console (/console on the web service): users, roles and API tokens.",
                  no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="API tokens for /campaigns/…, /gate/check and /metrics: each acts with the role of "
                             "its console user.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _users() -> Users:
    return Users(AccountStore())


def _tokens() -> ApiTokens:
    return ApiTokens(AccountStore())


def _day(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M") if epoch else "-"


def _or_exit(action: Callable[[], T]) -> T:
    """Run a user-store change; a refused one prints why and exits 2."""
    try:
        return action()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@user_app.command("add")
def add(username: str,
        role: Annotated[Role, typer.Option(help="admin, campaign_manager, qa_reviewer, auditor or monitor.")],
        password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                              help="At least 10 characters (asked for when not given).")]) -> None:
    """Add a user with a role."""
    user = _or_exit(lambda: _users().add(username, role.value, password))
    typer.echo(f"added {user.username} ({user.role.value})")


@user_app.command("list")
def list_users() -> None:
    """Users, roles and whether they are active or locked."""
    for u in _users().all():
        state = "active" if u.active else "disabled"
        typer.echo(f"{u.username:<24} {u.role.value:<17} {state}{' locked' if u.locked_until else ''}")


@user_app.command("unlock")
def unlock(username: str) -> None:
    """Clear the lock-outs of this user name (at every client address) after too many failed logins."""
    _or_exit(lambda: _users().unlock(username))
    typer.echo(f"unlocked {username}")


@user_app.command("disable")
def disable(username: str) -> None:
    """Stop a user from logging in (sessions end at their next request)."""
    _or_exit(lambda: _users().set_active(username, False))
    typer.echo(f"disabled {username}")


@token_app.command("create")
def token_create(user: Annotated[str, typer.Option("--user", help="The console user the token acts as.")],
                 label: Annotated[str, typer.Option(help="What it is for (e.g. prometheus).")] = "",
                 days: Annotated[float | None, typer.Option(help="Expire after this many days (default: never).")]
                 = None) -> None:
    """Create a token for USER; it is printed once, on stdout, and only its SHA-256 is stored."""
    created = _or_exit(lambda: _tokens().create(user, label, days))
    role = _users().get(user).role.value  # type: ignore[union-attr] - create() checked it exists
    expiry = f", expires {_day(created.info.expires_at)} UTC" if created.info.expires_at else ""
    typer.echo(f"token {created.info.id} for {user} ({role}){expiry}. It is shown this once: store it now.",
               err=True)
    typer.echo(created.token)


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None) -> None:
    """Tokens: id, user, state, label, created, expires and last used (UTC). Never the tokens themselves."""
    now = time.time()
    users = {u.username: u for u in _users().all()}
    for t in _tokens().all(user):
        owner = users.get(t.username)
        state = t.state(now) if owner is None or owner.active else "user disabled"
        role = owner.role.value if owner else "?"
        typer.echo(f"{t.id:<13} {t.username:<20} {role:<17} {state:<13} created {_day(t.created_at)}  "
                   f"expires {_day(t.expires_at)}  used {_day(t.last_used_at)}  {t.label}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="As `duebot console token list` "
                                                                          "shows it.")]) -> None:
    """Revoke a token: every request carrying it is refused from now on."""
    info = _or_exit(lambda: _tokens().revoke(token_id))
    typer.echo(f"revoked {info.id} ({info.username})")


@app.command("roles")
def roles() -> None:
    """Print the role matrix (who may see and do what)."""
    typer.echo(matrix_markdown())
