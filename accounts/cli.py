"""`duebot accounts …`: load and look at the accounts duebot collects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from duebot.accounts.importer import RowError, import_csv
from duebot.accounts.store import AccountStore

app = typer.Typer(help="Accounts: import overdue accounts and inspect them.", no_args_is_help=True,
                  add_completion=False)
console = Console()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row (columns: see README)", exists=True,
                                         dir_okay=False)],
    region: Annotated[str, typer.Option(help="Region for numbers written without +country code")] = "US",
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


if __name__ == "__main__":
    app()
