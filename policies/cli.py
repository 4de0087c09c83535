"""`duebot gate check`: decide offline from JSON requests; one JSON decision per line on stdout.

Exit 0 when it ran (whatever it decided); 2 on invalid input (message names the field on stderr; invalid
requests still get a fail-closed INVALID_REQUEST decision line so output lines match input requests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from duebot.policies import codes
from duebot.policies.audit import AUDIT_KIND, JsonlAuditSink, append_many, audit_body
from duebot.policies.check import InputError, check_many, parse_input
from duebot.policies.gate import denied
from duebot.policies.packs import DEFAULT_PACK, PackError, load_pack

app = typer.Typer(help="Compliance gate: may this contact leave duebot now?", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def _gate() -> None:
    """Compliance gate commands."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def check(
    pack: Annotated[str, typer.Option("--pack", "-p", help="cn, us, or a path to an operator's pack .yml")]
    = DEFAULT_PACK,
    input: Annotated[str, typer.Option("--input", "-i", help="JSON / JSON array / JSON Lines file, - = stdin")]
    = "-",
    audit_file: Annotated[Path | None, typer.Option(
        "--audit-file", help="append-only audit log [default: $DUEBOT_DATA_DIR/audit/gate.jsonl]")] = None,
) -> None:
    """Decide each request and print one decision per line as JSON."""
    try:
        text = sys.stdin.read() if input == "-" else Path(input).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"--input {input}: {exc}") from None
    try:
        items = parse_input(text)
    except InputError as exc:
        raise _fail(str(exc)) from None
    sink = JsonlAuditSink(audit_file)
    try:
        loaded = load_pack(pack)
    except PackError as exc:
        decisions = [denied(codes.UNKNOWN_PACK, pack, str(exc)) for _ in items]
        try:
            append_many(sink, AUDIT_KIND, [audit_body(i, d, "offline") for i, d in zip(items, decisions,
                                                                                      strict=True)])
        finally:
            _print(decisions)
        raise _fail(f"--pack: {exc}") from None
    result = check_many(items, loaded, sink)
    _print(result.decisions)
    if result.errors:
        for err in result.errors:
            typer.echo(f"error: invalid request: {err}", err=True)
        raise typer.Exit(2)


def _print(decisions: list) -> None:
    out = sys.stdout
    for d in decisions:
        out.write(json.dumps(d.to_json(), separators=(", ", ": ")) + "\n")
    out.flush()


if __name__ == "__main__":
    app()
