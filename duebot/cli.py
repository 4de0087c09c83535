"""The one command-line entry point: `duebot <concern> ...`."""

from __future__ import annotations

import json
import platform
import subprocess
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from duebot import __version__
from duebot.accounts.cli import app as accounts_app
from duebot.campaigns.cli import app as campaign_app
from duebot.campaigns.report_cli import report as money_report
from duebot.channels.billing.cli import app as billing_app
from duebot.console.cli import app as console_app
from duebot.emotion.cli import app as emotion_app
from duebot.emotion.cli import eval_emotion
from duebot.evidence.cli import app as evidence_app
from duebot.policies.cli import app as gate_app
from duebot.risk.cli import app as risk_app
from duebot.settings import SettingsError, load_settings
from duebot.voice.cli import app as voice_app
from duebot.voice.cli import models_app

app = typer.Typer(help="duebot: humane, lawful collection of overdue telecom bills by voice and SMS.",
                  no_args_is_help=True, add_completion=False)
console = Console()

app.add_typer(gate_app, name="gate")
app.add_typer(evidence_app, name="evidence")
app.add_typer(accounts_app, name="accounts")
app.add_typer(campaign_app, name="campaign")
app.add_typer(voice_app, name="voice")
app.add_typer(models_app, name="models")
app.add_typer(emotion_app, name="emotion")
app.add_typer(console_app, name="console")
app.command("report")(money_report)  # money KPIs by branch and period (campaigns/money.py)
app.add_typer(risk_app, name="risk")
app.add_typer(billing_app, name="billing")  # issue 20: the billing/CRM relay (channels/billing/cli.py)

config_app = typer.Typer(help="The settings tree: what duebot reads, its effective values, their check.",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def _validate_settings(ctx: typer.Context) -> None:
    """Every command starts from valid settings: a bad value stops it here, naming the variable."""
    if ctx.invoked_subcommand == "config":
        return  # `duebot config` reports problems itself
    try:
        load_settings()
    except SettingsError as exc:
        console.print(f"[red]duebot: invalid settings:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per setting.")] = False,
) -> None:
    """Print every setting's effective value (secrets masked) and where it came from (environment or default)."""
    from rich.table import Table

    from duebot.settings import effective

    try:
        rows = effective(load_settings())
    except SettingsError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        for entry, value, source in rows:
            print(json.dumps({"group": entry.group, "variable": entry.variable, "value": value, "source": source,
                              "secret": entry.secret}, ensure_ascii=False))
        return
    table = Table("group", "variable", "value", "from", box=None, highlight=False)
    for entry, value, source in rows:
        table.add_row(entry.group, entry.variable, value, source)
    console.print(table)


@config_app.command("check")
def config_check() -> None:
    """Validate the settings without starting anything: exit 0 when valid, 2 with each bad variable named."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"settings valid: data in {settings.data_dir}, web on {settings.host}:{settings.web_port}, "
                  f"Redis {'from REDIS_URL' if settings.redis.url else 'embedded under duebot serve'}",
                  highlight=False)


@config_app.command("docs")
def config_docs() -> None:
    """Print docs/configuration.md, generated from the settings tree."""
    from duebot.settings import markdown_table

    print(markdown_table(), end="")


@app.command()
def version() -> None:
    """Print the versions of duebot, its Python and the Rasa environment."""
    settings = load_settings()
    console.print(f"duebot {__version__} (Python {platform.python_version()})")
    if settings.rasa_bin.exists():
        out = subprocess.run([str(settings.rasa_bin), "--version"], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if line.startswith(("Rasa Version", "Rasa SDK Version", "Python Version")):
                console.print(f"  rasa env: {line.strip()}")
    else:
        console.print(f"  rasa env: not installed at {settings.rasa_venv} (run `make setup`)")


@app.command()
def train(
    force: bool = typer.Option(False, help="Retrain even if the training data did not change."),
    lang: Annotated[list[str] | None, typer.Option(
        metavar="LANG", help="Train only this language (en, zh; repeatable; default: all).")] = None,
) -> None:
    """Train each language's Rasa model when its training data or config changed (named by their hash)."""
    from duebot.training.train import LANGUAGES, check_language, train_all

    settings = load_settings()
    try:
        languages = tuple(check_language(x) for x in lang) if lang else LANGUAGES
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from exc
    with console.status(f"training the Rasa models ({', '.join(languages)}; a few minutes each)…"):
        results = train_all(settings, force=force, log=settings.log_dir / "train.log", languages=languages)
    for language, path, trained in results:
        console.print(f"{language}: {'trained' if trained else 'up to date'}: {path}")


eval_app = typer.Typer(help="Measure duebot: NLU accuracy on any labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
eval_app.command("emotion")(eval_emotion)


@eval_app.command("nlu")
def eval_nlu(
    data: Annotated[Path, typer.Option(help="Rasa NLU YAML file to score (e.g. evaluation/nlu_heldout/en.yml)",
                                       exists=True, dir_okay=False)],
    report: Annotated[Path, typer.Option(help="Where to write the JSON summary")],
    lang: Annotated[str, typer.Option(help="Which language's model to score (en, zh)")] = "en",
) -> None:
    """Score LANG's trained model on DATA; write accuracy, macro-F1 and per-intent figures to REPORT."""
    from duebot.training.nlu_eval import evaluate
    from duebot.training.train import check_language

    try:
        check_language(lang)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from exc
    settings = load_settings()
    out_dir = report.with_suffix("").with_name(report.stem + "_rasa")
    with console.status(f"evaluating the {lang} model with rasa test nlu…"):
        summary = evaluate(settings, data, out_dir, settings.log_dir / "eval.log", language=lang)
    report.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    console.print(f"accuracy {summary['accuracy']:.3f}  macro-F1 {summary['macro_f1']:.3f}  "
                  f"({len(summary['errors'])} errors) → {report}; confusion matrix: {summary['confusion_matrix_png']}")


@app.command()
def demo(
    accounts: int = typer.Option(200, help="Accounts in the demo campaign."),
    short: bool = typer.Option(False, help="A quick run (at most 40 accounts), as the test runs it."),
    data_dir: str = typer.Option("var/demo", help="Scratch data directory (wiped at start)."),
) -> None:
    """Run a whole campaign against simulated subscribers on the embedded defaults, then report and verify."""
    from duebot.demo.run import DemoOptions
    from duebot.demo.run import run as run_demo

    raise typer.Exit(run_demo(DemoOptions(accounts=accounts, short=short, data_dir=Path(data_dir).resolve())))


@app.command()
def serve() -> None:
    """Start Redis (embedded unless REDIS_URL), the action server, Rasa and the web service."""
    from duebot.serve import run

    run(load_settings())


@app.command()
def shell(
    url: str = typer.Option(None, help="Rasa server URL; default from DUEBOT_RASA_PORT."),
    sender: str = typer.Option(None, help="Conversation id; a new one by default."),
    account: str = typer.Option(None, help="Talk as this account (its language picks the Rasa server)."),
) -> None:
    """Talk to the running bot in the terminal through its REST webhook (start it with `duebot serve`)."""
    settings = load_settings()
    metadata: dict[str, str] = {}
    language = "en"
    if account:
        from duebot.accounts.store import AccountStore
        from duebot.settings import conversation_language

        found = AccountStore().get_account(account)
        if found is None:
            raise typer.BadParameter(f"no account {account!r} in the account store", param_hint="--account")
        language = conversation_language(found.language)
        metadata = {"account_id": account, "channel": "chat", "language": language}
    base = url or settings.rasa_url_for(language)
    sender = sender or f"shell-{uuid.uuid4().hex[:8]}"
    console.print(f"[dim]talking to {base} as {sender}; an empty line or Ctrl-D ends[/dim]")
    with httpx.Client(base_url=base, timeout=30.0) as client:
        while True:
            try:
                text = input("you> ")
            except EOFError:
                break
            if not text.strip():
                break
            try:
                body = {"sender": sender, "message": text, **({"metadata": metadata} if metadata else {})}
                response = client.post("/webhooks/rest/webhook", json=body)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                console.print(f"[red]the bot at {base} did not answer ({exc}); is `duebot serve` running?[/red]")
                raise typer.Exit(1) from exc
            replies = response.json()
            if not replies:
                console.print("[yellow]bot> (no reply)[/yellow]")
            for reply in replies:
                console.print(f"bot> {reply.get('text', '')}")


if __name__ == "__main__":
    app()
