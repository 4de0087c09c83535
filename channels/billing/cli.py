"""`duebot billing ...`: run the relay, list and re-send its dead letters (docs/billing.md)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated

import typer

from duebot.channels.billing.relay import BillingRelay

app = typer.Typer(help="The operator's billing/CRM: signed events out, dead letters.", no_args_is_help=True)
NOT_CONFIGURED = "the billing relay is not configured: set DUEBOT_BILLING_WEBHOOK_URL"


def _relay() -> BillingRelay:
    from duebot import clients

    try:
        relay = BillingRelay.from_settings()
    except clients.RedisNotConfigured as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if relay is None:
        typer.echo(f"error: {NOT_CONFIGURED}", err=True)
        raise typer.Exit(2)
    return relay


@app.command("relay")
def relay_cmd() -> None:
    """Post new account events to DUEBOT_BILLING_WEBHOOK_URL until stopped (`duebot serve` runs it)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    relay = _relay()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    relay.run(stop)


@app.command("dead-letters")
def dead_letters_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Events billing did not accept after every try, oldest first, with the last error."""
    relay = _relay()
    letters = relay.dead_letters()
    for entry in letters:
        if as_json:
            typer.echo(json.dumps(entry, ensure_ascii=False))
        else:
            typer.echo(f"{entry['id']}  {entry['type']}  tries={entry['attempts']}  error: {entry['error']}")
    if not as_json:
        total = int(relay.client.get(relay.keys["dead-letters:count"]) or 0)
        typer.echo(f"{len(letters)} waiting; {total} dead-lettered in all")


@app.command("retry")
def retry_cmd(
    ids: Annotated[list[str] | None, typer.Argument(help="Event ids to re-send (default: all).")] = None,
    attempts: Annotated[int, typer.Option(help="Tries per event now (with the relay's back-off).")] = 1,
) -> None:
    """Re-send dead letters; those billing accepts leave the list."""
    sent, failing = _relay().retry(ids or (), attempts)
    for event_id in sent:
        typer.echo(f"sent   {event_id}")
    for event_id in failing:
        typer.echo(f"failed {event_id}")
    typer.echo(f"{len(sent)} sent, {len(failing)} still failing")
    if failing:
        raise typer.Exit(1)
