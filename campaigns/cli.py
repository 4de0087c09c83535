"""`duebot campaign …`: import, preview, launch, pause/resume/cancel, status, report, and the worker."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from duebot import clients
from duebot.accounts.importer import RowError
from duebot.accounts.store import AccountStore
from duebot.campaigns.service import CampaignError, Campaigns
from duebot.processes import ServiceSpec, start, stop
from duebot.settings import load_settings

app = typer.Typer(help="Outbound campaigns: import, preview, launch, pace, pause/resume, results.",
                  no_args_is_help=True, add_completion=False)
console = Console()


def _campaigns() -> Campaigns:
    return Campaigns(clients.account_store(), clients.redis_client())


def _fail(exc: Exception) -> None:
    console.print(f"[red]{exc}[/red]")
    raise typer.Exit(2) from exc


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines (.jsonl) of accounts", exists=True, dir_okay=False)],
    strategy: Annotated[str, typer.Option(help="Strategy name (policies/campaigns/NAME.yml) or YAML path")] = "default",
    name: Annotated[str | None, typer.Option(help="Campaign name (default: the file's name)")] = None,
    region: Annotated[str | None, typer.Option(
        help="Region for numbers written without +country code (default: the default pack's, CN)")] = None,
) -> None:
    """Import accounts and create a campaign of them; prints the campaign id. Same file again: same campaign."""
    try:
        campaigns = Campaigns(clients.account_store(), clients.redis_client())
        imported = campaigns.import_file(file, strategy, name, region)
    except (RowError, CampaignError, ValueError) as exc:
        _fail(exc)
        return
    report = imported.report
    for line, reason in report.errors:
        console.print(f"[yellow]line {line}: {reason}[/yellow]")
    console.print(f"imported {report.imported} ({report.created} new, {report.updated} updated), "
                  f"{len(report.errors)} rejected")
    console.print(f"campaign {imported.campaign_id} ({'new' if imported.created else 'existing'}, "
                  f"{imported.added} accounts added)")
    if report.errors and report.imported == 0:
        raise typer.Exit(1)


@app.command()
def preview(
    campaign_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    out: Annotated[Path | None, typer.Option(help="Write every account's preview as JSON Lines here")] = None,
    exact: Annotated[bool, typer.Option(help="Ask the gate for each account with its own number (slow)")] = False,
) -> None:
    """For every account: the next step and whether the gate allows it now, summarised by reason code."""
    from duebot.campaigns.preview import preview as run_preview

    c = _campaigns()
    campaign = c.repo.get(campaign_id)
    if campaign is None:
        _fail(CampaignError(f"no campaign {campaign_id!r}"))
        return
    result = run_preview(c.store, campaign_id, campaign.strategy, exact=exact)
    if out is not None:
        import msgspec

        with out.open("wb") as handle:
            enc = msgspec.json.Encoder()
            for row in result.iter_json():
                handle.write(enc.encode(row) + b"\n")
    summary = result.summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table(title=f"preview {campaign_id}: {len(result.rows):,} accounts in {result.seconds:.2f}s "
                        f"({result.gate_calls:,} gate evaluations)")
    table.add_column("reason")
    table.add_column("accounts", justify="right")
    for reason, n in summary["by_reason"].items():
        table.add_row(reason, f"{n:,}")
    console.print(table)
    steps = Table(title="next step")
    for col in ("step", "channel", "gate", "accounts"):
        steps.add_column(col)
    for row in summary["by_step"]:
        steps.add_row(row["step"], row["channel"], row["gate"], f"{row['accounts']:,}")
    console.print(steps)
    console.print("status: " + ", ".join(f"{k} {v:,}" for k, v in summary["by_status"].items()))


@app.command()
def launch(
    campaign_id: Annotated[str, typer.Argument(metavar="ID")],
    workers: Annotated[int, typer.Option(help="Also start this many local worker processes")] = 0,
    watch: Annotated[bool, typer.Option(help="Show live progress until the campaign completes")] = True,
) -> None:
    """Launch: plan each account's first step and enqueue what is due (workers do the contacting)."""
    c = _campaigns()
    try:
        n = c.launch(campaign_id)
    except CampaignError as exc:
        _fail(exc)
        return
    console.print(f"launched {campaign_id}: {n:,} jobs enqueued")
    log_dir = load_settings().log_dir
    workers_started = [start(ServiceSpec(name=f"campaign-worker-{index}", ready=lambda: True,
                                         argv=[sys.executable, "-m", "duebot.campaigns.cli", "worker"],
                                         log_path=log_dir / f"campaign-worker-{index}.log"))
                       for index in range(workers)]
    try:
        if watch:
            _watch(c, campaign_id)
    finally:
        for worker in workers_started:
            stop(worker, grace=30)


@app.command()
def pause(campaign_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Stop new contacts (within a second); contacts in progress finish."""
    _simple(lambda c: c.pause(campaign_id), f"paused {campaign_id}")


@app.command()
def resume(campaign_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Continue a paused campaign."""
    _simple(lambda c: c.resume(campaign_id), f"resumed {campaign_id}")


@app.command()
def cancel(campaign_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Stop the campaign for good; nothing more is contacted."""
    _simple(lambda c: c.cancel(campaign_id), f"cancelled {campaign_id}")


def _simple(action, message: str) -> None:  # noqa: ANN001 - a callable on Campaigns
    try:
        action(_campaigns())
    except CampaignError as exc:
        _fail(exc)
    console.print(message)


@app.command()
def status(
    campaign_id: Annotated[str, typer.Argument(metavar="ID")],
    watch: Annotated[bool, typer.Option(help="Live progress bars until the campaign ends")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Progress per step and channel, account states, queue and workers."""
    c = _campaigns()
    try:
        state = c.status(campaign_id)
    except CampaignError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(state, indent=2))
    elif watch:
        _watch(c, campaign_id)
    else:
        _print_status(state)


def _print_status(state: dict) -> None:
    console.print(f"[bold]{state['campaign_id']}[/bold] {state['name']}: {state['status']}  accounts "
                  + ", ".join(f"{k} {v:,}" for k, v in state["accounts"].items()))
    table = Table()
    for col in ("step", "channel", "accounts", "completed", "attempts by state"):
        table.add_column(col)
    for s in state["steps"]:
        table.add_row(s["step"], s["channel"], f"{s['accounts']:,}", f"{s['completed']:,}",
                      ", ".join(f"{k} {v:,}" for k, v in s["attempts"].items()))
    console.print(table)
    console.print(f"queue {state['queue']}  workers {len(state['workers'])}  "
                  f"calls in progress {state['voice_calls_in_progress']}")


def _watch(c: Campaigns, campaign_id: str, interval: float = 0.5) -> None:
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[extra]}"))
    with Progress(*columns, console=console) as progress:
        tasks: dict[tuple[str, str], int] = {}
        while True:
            state = c.status(campaign_id)
            for s in state["steps"]:
                key = (s["step"], s["channel"])
                if key not in tasks:
                    tasks[key] = progress.add_task(f"{s['step']} [{s['channel']}]", total=s["accounts"], extra="")
                denied = s["attempts"].get("denied", 0)
                progress.update(tasks[key], total=s["accounts"], completed=s["completed"],
                                extra=f"waiting on gate {denied:,}" if denied else "")
            if state["status"] in ("completed", "cancelled", "paused"):
                break
            time.sleep(interval)
    console.print(f"{campaign_id}: {state['status']}; accounts "
                  + ", ".join(f"{k} {v:,}" for k, v in state["accounts"].items()))


def kpi_table(campaign_id: str, kpis: dict) -> Table:
    """The KPI report as a table (nested breakdowns are in the JSON/CSV files)."""
    table = Table(title=f"KPIs {campaign_id}")
    table.add_column("kpi")
    table.add_column("value", justify="right")
    for name, value in kpis.items():
        if not isinstance(value, dict):
            table.add_row(name, "—" if value is None else f"{value}")
    return table


@app.command()
def report(
    campaign_id: Annotated[str, typer.Argument(metavar="ID")],
    out: Annotated[Path, typer.Option(help="Directory for report.json, CSVs and PNG plots")],
) -> None:
    """Results and KPIs (seed 000 §2.4) as JSON and CSV, plus funnel / by-segment / over-time plots."""
    from duebot.campaigns.report import write_report

    try:
        result = write_report(AccountStore(), campaign_id, out)
    except KeyError as exc:
        _fail(CampaignError(f"no campaign {campaign_id!r}"))
        raise typer.Exit(2) from exc
    console.print(kpi_table(campaign_id, result["kpis"]))
    for name, path in result["files"].items():
        console.print(f"{name}: {path}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Concurrent jobs (threads) in this process")] = 4,
    contactor: Annotated[list[str] | None, typer.Option(
        help="CHANNEL=SPEC: a registered name (simulated, twilio_sms) or module:factory, e.g. sms=twilio_sms "
             "(repeatable; default simulated)")] = None,
    claim_idle: Annotated[float, typer.Option(help="Seconds before a dead worker's job is claimed")] = 30.0,
    heartbeat_ttl: Annotated[float, typer.Option(help="Seconds without heartbeat before a worker is dead")] = 5.0,
    scheduler_interval: Annotated[float, typer.Option(help="Seconds between scheduler ticks")] = 1.0,
    voice_cps: Annotated[float | None, typer.Option(help="Override the strategy's calls per second")] = None,
    sms_rate: Annotated[float | None, typer.Option(help="Override the strategy's SMS per second")] = None,
    max_calls: Annotated[int | None, typer.Option(help="Override the strategy's max concurrent calls")] = None,
    sim_seed: Annotated[int, typer.Option(help="Simulated contactor: RNG seed")] = 0,
    sim_latency: Annotated[float, typer.Option(help="Simulated contactor: max seconds per contact")] = 0.0,
    sim_certain: Annotated[bool, typer.Option(help="Simulated contactor: every contact reaches, none settles")] = False,
    no_evidence: Annotated[bool, typer.Option(help="Do not submit gate decisions to the evidence inbox")] = False,
) -> None:
    """A long-running worker: consumes contact jobs from Redis (run several, on several machines)."""
    from duebot.campaigns import contactors as registry
    from duebot.campaigns.worker import WorkerOptions, run_worker

    store, client = clients.account_store(), clients.redis_client()
    specs = dict(item.split("=", 1) for item in (contactor or []))
    sim = {"seed": sim_seed, "latency": sim_latency, "certain": sim_certain}
    built = {}
    for channel in ("sms", "voice"):
        spec = specs.get(channel, "simulated")
        built[channel] = registry.build(spec, store, client, **(sim if spec == "simulated" else {}))
    options = WorkerOptions(concurrency=concurrency, claim_idle=claim_idle, heartbeat_ttl=heartbeat_ttl,
                            scheduler_interval=scheduler_interval, voice_cps=voice_cps, sms_rate=sms_rate,
                            max_calls=max_calls, evidence=not no_evidence)
    console.print(f"campaign worker {options.name}: sms={specs.get('sms', 'simulated')} "
                  f"voice={specs.get('voice', 'simulated')} concurrency={concurrency}")
    run_worker(store, client, built, options)


if __name__ == "__main__":
    app()
