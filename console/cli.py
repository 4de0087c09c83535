"""`duebot console …`: console users from the command line (the first admin has to come from somewhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from duebot.accounts.store import AccountStore
from duebot.console.roles import Role, matrix_markdown
from duebot.console.users import UserError, Users

T = TypeVar("T")

app = typer.Typer(help="The web console (/console on the web service): users and roles.", no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _users() -> Users:
    return Users(AccountStore())


def _or_exit(action: Callable[[], T]) -> T:
    """Run a user-store change; a refused one prints why and exits 2."""
    try:
        return action()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@user_app.command("add")
def add(username: str,
        role: Annotated[Role, typer.Option(help="admin, campaign_manager, qa_reviewer or auditor.")],
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
    """Clear a lock-out after too many failed logins."""
    _or_exit(lambda: _users().unlock(username))
    typer.echo(f"unlocked {username}")


@user_app.command("disable")
def disable(username: str) -> None:
    """Stop a user from logging in (sessions end at their next request)."""
    _or_exit(lambda: _users().set_active(username, False))
    typer.echo(f"disabled {username}")


@app.command("roles")
def roles() -> None:
    """Print the role matrix (who may see and do what)."""
    typer.echo(matrix_markdown())
