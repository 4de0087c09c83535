"""`duebot accounts …`: load and look at the accounts duebot collects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from duebot.accounts.importer import RowError, import_csv
from duebot.accounts.store import AccountStore

app = typer.Typer(help="Accounts: import overdue accounts and inspect them; rotate the keys of data at rest.",
                  no_args_is_help=True, add_completion=False)
console = Console()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row (columns: see docs/campaigns.md)", exists=True,
                                         dir_okay=False)],
    region: Annotated[str | None, typer.Option(
        help="Region for numbers written without +country code (default: the default pack's, CN)")] = None,
) -> None:
    """Import accounts from CSV; bad rows are reported with line and reason, good rows kept."""
    try:
        report = import_csv(file, AccountStore(), default_region=region)
    except RowError as exc:
        console.print(f"[red]{file}: {exc}[/red]")
        raise typer.Exit(2) from exc
    for line, reason in report.errors:
        console.print(f"[yellow]line {line}: {reason}[/yellow]")
    console.print(f"imported {report.imported} ({report.created} new, {report.updated} updated), "
                  f"{len(report.errors)} rejected")
    if report.errors and report.imported == 0:
        raise typer.Exit(1)



@app.command()
def rekey(
    evidence_dir: Annotated[Path | None, typer.Option(
        "--evidence-dir", help="The evidence log whose payloads to re-seal (default: $DUEBOT_DATA_DIR/evidence).",
    )] = None,
    evidence: Annotated[bool, typer.Option(help="Re-seal the evidence payloads too (the writer must be "
                                                "stopped: it holds the log's lock).")] = True,
) -> None:
    """Seal all personal data at rest again with the current key (DUEBOT_DATA_KEY) and cipher, and recompute the
    blind indexes (DUEBOT_BLIND_INDEX_KEY): the account store, then the evidence payloads. Run it after rotating a
    key; when it reports no problem, the retired keys (DUEBOT_DATA_OLD_KEYS, ..._BLIND_INDEX_OLD_KEYS) can go.
    Idempotent: running it again changes nothing."""
    from duebot.crypto import keyring as current_keyring
    from duebot.evidence.store import PayloadStore
    from duebot.settings import load_settings

    keyring = current_keyring()
    report = AccountStore(keyring=keyring).rekey()
    console.print(f"account store: {report.accounts} accounts, {report.opt_outs} opt-outs and {report.events} "
                  f"event or dispute details re-sealed or re-indexed with key {keyring.current_id}")
    problems = list(report.errors)
    if evidence:
        directory = evidence_dir or load_settings().data_dir / "evidence"
        if (directory / "payloads").is_dir():
            try:
                done, payload_problems = PayloadStore(directory, keyring).rekey()
            except RuntimeError as exc:
                console.print(f"[red]evidence: {exc}[/red]")
                raise typer.Exit(1) from None
            console.print(f"evidence {directory}: {done} payloads re-sealed with key {keyring.current_id}")
            problems += payload_problems
        else:
            console.print(f"evidence {directory}: no payloads")
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
    if problems:
        console.print("[red]keep the retired keys configured: what they sealed is not all re-sealed[/red]")
        raise typer.Exit(1)


@app.command()
def keygen() -> None:
    """Print a fresh random key (32 bytes, base64url) for DUEBOT_DATA_KEY or DUEBOT_BLIND_INDEX_KEY."""
    from duebot.crypto import new_secret

    typer.echo(new_secret())


if __name__ == "__main__":
    app()
