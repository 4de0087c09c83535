"""`duebot risk …`: a synthetic history, training, scoring the store's accounts, the excluded-attribute check."""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from duebot.settings import Settings, load_settings

app = typer.Typer(help="The risk score: synthetic history, training, scoring accounts, the excluded-attribute check.",
                  no_args_is_help=True, add_completion=False)
console = Console()


def models_dir(settings: Settings | None = None) -> Path:
    return (settings or load_settings()).data_dir / "risk" / "models"


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(code)


def _errors(errors: list[tuple[int, str]], limit: int = 20) -> None:
    for line, reason in errors[:limit]:
        console.print(f"[yellow]line {line}: {reason}[/yellow]", highlight=False)
    if len(errors) > limit:
        console.print(f"[yellow]… and {len(errors) - limit} more rejected rows[/yellow]")


@app.command()
def synth(
    accounts: Annotated[int, typer.Option(help="How many account snapshots", min=1, max=5_000_000)] = 20000,
    out: Annotated[Path, typer.Option(help="CSV, or JSON Lines when it ends in .jsonl")] = Path("risk-history.csv"),
    seed: Annotated[int, typer.Option(help="Same seed, same file")] = 0,
) -> None:
    """Write a labelled history generated from the seeds' shares and rates (docs/risk.md) to train on."""
    from duebot.risk.data import write_rows
    from duebot.risk.synth import COLUMNS, generate

    rows = generate(accounts, seed)
    write_rows(out, rows, COLUMNS)
    by_segment: dict[str, list[int]] = {}
    for row in rows:
        by_segment.setdefault(str(row["segment"]), []).append(int(row["recovered"]))  # type: ignore[call-overload]
    table = Table(title=f"{out}: {len(rows):,} synthetic accounts (seed {seed})")
    for column in ("segment", "share", "recovered"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for segment, labels in sorted(by_segment.items(), key=lambda kv: -len(kv[1])):
        table.add_row(segment, f"{len(labels) / len(rows):.1%}", f"{np.mean(labels):.1%}")
    table.add_row("all", "100%", f"{np.mean([int(r['recovered']) for r in rows]):.1%}")  # type: ignore[call-overload]
    console.print(table)


def _metrics_table(metrics: dict[str, Any], threshold: float) -> Table:
    rows = metrics["rows"]
    table = Table(title=f"held-out part: {rows['held_out']:,} rows (trained on {rows['train']:,})")
    table.add_column("model")
    for column in ("AUC", "Brier", "log loss", "accuracy@0.5", "mean score", "p10/p50/p90", f"< {threshold:g}"):
        table.add_column(column, justify="right")
    for key, name in (("lr", "logistic regression"), ("gb", "gradient boosting (calibrated)")):
        m = metrics.get(key)
        if not m:
            continue
        q = m["scores"]["quantiles"]
        chosen = " ← scores" if metrics["scored_by"] == key else ""
        table.add_row(name + chosen, f"{m['auc']:.3f}", f"{m['brier']:.3f}", f"{m['log_loss']:.3f}",
                      f"{m['accuracy_at_0.5']:.1%}", f"{m['scores']['mean']:.1f}", f"{q['p10']}/{q['p50']}/{q['p90']}",
                      f"{m['scores']['below_warning']:.1%}")
    return table


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Labelled history: CSV or JSON Lines (docs/risk.md)", exists=True,
                                       dir_okay=False)],
    seed: Annotated[int, typer.Option(help="Held-out split and boosting seed")] = 0,
    holdout: Annotated[float | None, typer.Option(help="Held-out share (default DUEBOT_RISK_HOLDOUT)")] = None,
    horizon_days: Annotated[int | None, typer.Option(help="N of the label (default DUEBOT_RISK_HORIZON_DAYS)")] = None,
    boosted: Annotated[bool, typer.Option("--boosted/--no-boosted", help="Also train the boosted model")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Train the logistic regression (and a calibrated boosted model beside it), measure both on the held-out
    part, save a new version with its metrics and plots, and make it the current model."""
    from duebot.risk.data import HistoryError, read_history
    from duebot.risk.features import selected
    from duebot.risk.model import ModelError, save
    from duebot.risk.model import train as fit

    settings = load_settings()
    risk = settings.risk
    try:
        features = selected(risk.age_band, risk.exclude)
        history = read_history(data)
    except (HistoryError, ValueError) as exc:
        _fail(str(exc))
        return
    _errors(history.errors)
    if history.errors:
        console.print(f"{len(history.errors):,} rows rejected, {len(history.inputs):,} used")
    ids = [i for i in history.ids() if i]
    duplicates = len(ids) - len(set(ids))
    if duplicates:
        console.print(f"[yellow]{duplicates:,} rows repeat an account_id (several snapshots of one account: their "
                      "held-out metrics may be optimistic)[/yellow]")
    info = {"file": str(data), "sha256": history.sha256, "rows": len(history.inputs),
            "rejected": len(history.errors), "recovered": int(sum(history.labels)),
            "ignored_columns": history.ignored}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=as_json) as progress:
        task = progress.add_task("training", total=None)
        try:
            trained = fit(history.inputs, history.labels, features=features, holdout=holdout or risk.holdout,
                          seed=seed, horizon_days=horizon_days or risk.horizon_days,
                          warning_below=risk.warning_below, data=info, boosted=boosted,
                          step=lambda what: progress.update(task, description=f"training: {what}"))
        except ModelError as exc:
            _fail(str(exc))
            return
        progress.update(task, description="saving model, metrics and plots")
        directory = save(trained, models_dir(settings))
    metrics = json.loads((directory / "metrics.json").read_text())
    if as_json:
        print(json.dumps(metrics, indent=1))
        return
    console.print(_metrics_table(metrics, risk.warning_below))
    console.print(metrics["choice"]["rule"] + f": scored by [bold]{metrics['scored_by']}[/bold]")
    console.print(f"features: {', '.join(f.name for f in features)}")
    console.print(f"never used: {', '.join(sorted(trained.model.doc['excluded']))}")
    console.print(f"model {trained.model.version} (current) in {directory}: model.json, metrics.json, "
                  "reliability.png, scores.png")


@app.command()
def score(
    account: Annotated[list[str] | None, typer.Option(help="Score only this account (repeatable)")] = None,
    history: Annotated[Path | None, typer.Option(help="Operator history by account_id (training columns, no label)",
                                                 exists=True, dir_okay=False)] = None,
    model: Annotated[str | None, typer.Option(help="Model version (default DUEBOT_RISK_MODEL, else current)")] = None,
    all_statuses: Annotated[bool, typer.Option("--all-statuses", help="Also paid/closed/legal… accounts")] = False,
    rescore_active: Annotated[bool, typer.Option(help="Also re-score accounts active in a running or paused "
                                                      "campaign (moves them to another schedule mid-way)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print, do not write the scores")] = False,
    show: Annotated[int, typer.Option(help="Print the N lowest scores with their factors")] = 20,
    top: Annotated[int, typer.Option(help="Factors per account", min=0, max=10)] = 3,
    out: Annotated[Path | None, typer.Option(help="Every score and its factors as JSON Lines here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Score accounts in the store (0-100, higher = more likely to pay), write `risk_score` and `risk_model` per
    account, and print the lowest scores with the factors behind them in plain words."""
    from duebot import clients
    from duebot.risk.data import HistoryError, read_history
    from duebot.risk.fromstore import account_ids, active_in_campaigns, inputs_for
    from duebot.risk.model import ModelError, load_model
    from duebot.risk.scores import ScoreStore

    settings = load_settings()
    threshold = settings.risk.warning_below
    try:
        loaded = load_model(models_dir(settings), model or settings.risk.model)
    except ModelError as exc:
        _fail(str(exc))
        return
    overrides = {}
    if history is not None:
        try:
            known = read_history(history, labelled=False)
        except HistoryError as exc:
            _fail(str(exc))
            return
        _errors(known.errors)
        overrides = {row["account_id"].strip(): inputs for row, inputs in zip(known.raw, known.inputs, strict=True)}
    store = clients.account_store(settings)
    ids = list(dict.fromkeys(account)) if account else account_ids(store, None if all_statuses else ("open",))
    skipped: set[str] = set() if rescore_active or dry_run else active_in_campaigns(store, ids)
    todo = [i for i in ids if i not in skipped]
    with_age = "age_band" in {f.name for f in loaded.encoding.features}
    scores_store = ScoreStore(store.engine)
    lowest: list[tuple[int, str, dict]] = []
    counts: Counter[int] = Counter()
    handle = out.open("w", encoding="utf-8") if out is not None else None
    found = 0
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task(f"scoring with {loaded.label}", total=len(todo))
            batch: list[tuple[str, dict]] = []

            def flush() -> None:
                nonlocal found
                if not batch:
                    return
                results = loaded.score([inputs for _, inputs in batch], top=top)
                rows = []
                for (account_id, _), scored in zip(batch, results, strict=True):
                    found += 1
                    counts[scored.score] += 1
                    item = {"account_id": account_id, **scored.to_json(), "risk_model": loaded.label,
                            "warning": scored.score < threshold}
                    if handle is not None:
                        handle.write(json.dumps(item, ensure_ascii=False) + "\n")
                    entry = (-scored.score, account_id, item)
                    if len(lowest) < show:
                        heapq.heappush(lowest, entry)
                    elif show and entry > lowest[0]:
                        heapq.heapreplace(lowest, entry)
                    rows.append({"account_id": account_id, "risk_score": scored.score, "risk_model": loaded.label,
                                 "probability": scored.probability, "factors": item["factors"]})
                if not dry_run:
                    scores_store.put_many(rows)
                progress.advance(task, len(batch))
                batch.clear()

            for account_id, inputs in inputs_for(store, todo, dt.date.today(), with_age=with_age,
                                                 overrides=overrides):
                batch.append((account_id, inputs))
                if len(batch) >= 1000:
                    flush()
            flush()
    finally:
        if handle is not None:
            handle.close()
    values = np.repeat(np.array(list(counts), dtype=float), list(counts.values())) if counts else np.array([])
    summary = {"model": loaded.label, "scored": found, "written": 0 if dry_run else found,
               "skipped_active_in_campaign": len(skipped), "not_found": len(todo) - found,
               "warning_below": threshold, "below_warning": int(sum(n for s, n in counts.items() if s < threshold)),
               "mean": round(float(values.mean()), 2) if found else None,
               "quantiles": {f"p{q}": int(np.percentile(values, q, method="nearest")) for q in (10, 50, 90)}
               if found else {}}
    if as_json:
        print(json.dumps({**summary, "lowest": [item for _, _, item in sorted(lowest, reverse=True)]}, indent=1))
        return
    if lowest:
        table = Table(title=f"lowest {len(lowest)} scores (model {loaded.label}; factors vs the average account)")
        table.add_column("account")
        table.add_column("score", justify="right")
        table.add_column("top factors")
        for _, account_id, item in sorted(lowest, reverse=True):
            flag = " [red]warning[/red]" if item["warning"] else ""
            words = "; ".join(f"{'↑' if f['direction'] == 'raises' else '↓'} {f['words']}" for f in item["factors"])
            table.add_row(account_id, f"{item['score']}{flag}", words)
        console.print(table)
    console.print(f"scored {found:,} accounts with {loaded.label}"
                  + (" (dry run: nothing written)" if dry_run else "")
                  + f"; {summary['below_warning']:,} below {threshold:g}"
                  + (f"; mean {summary['mean']}, p10/p50/p90 {'/'.join(str(v) for v in summary['quantiles'].values())}"
                     if found else ""))
    if skipped:
        console.print(f"[yellow]{len(skipped):,} accounts active in a running or paused campaign kept their score "
                      "(--rescore-active to change it)[/yellow]")
    if summary["not_found"]:
        console.print(f"[yellow]{summary['not_found']:,} account ids not in the store[/yellow]")


@app.command()
def check(
    data: Annotated[Path, typer.Option(help="A labelled history holding excluded attributes (e.g. `risk synth`)",
                                       exists=True, dir_okay=False)],
    model: Annotated[str | None, typer.Option(help="Model version (default DUEBOT_RISK_MODEL, else current)")] = None,
    tolerance: Annotated[float, typer.Option(help="Largest Kolmogorov-Smirnov distance between a group's scores "
                                                  "and the rest's")] = 0.05,
    out: Annotated[Path | None, typer.Option(help="Write check.json and a plot per attribute here "
                                                  "(default: the model's directory)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Show the score does not move with attributes it must not use: shuffle and vary each, re-score, re-train,
    and compare score distributions by group. Exit 1 when one moves it."""
    from duebot.risk.check import excluded_attribute_check
    from duebot.risk.data import HistoryError, read_history
    from duebot.risk.model import ModelError, load_model

    settings = load_settings()
    try:
        loaded = load_model(models_dir(settings), model or settings.risk.model)
        history = read_history(data)
    except (ModelError, HistoryError) as exc:
        _fail(str(exc))
        return
    target = out or loaded.directory or Path(".")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=as_json) as progress:
        progress.add_task(f"checking {loaded.label} on {len(history.raw):,} rows", total=None)
        result = excluded_attribute_check(loaded, history, warning_below=settings.risk.warning_below,
                                          tolerance=tolerance, plots=target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "check.json").write_text(json.dumps(result, indent=1) + "\n")
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        table = Table(title=f"excluded-attribute check, model {result['model']}, {result['rows']:,} rows")
        for column in ("attribute", "max score change", "max coef change", "max KS", "groups: mean score", "ok"):
            table.add_column(column, justify="left" if column in ("attribute", "groups: mean score") else "right")
        for r in result["attributes"]:
            groups = ", ".join(f"{g['group']} {g['mean_score']}" for g in r.get("groups", [])[:5])
            table.add_row(r["attribute"], str(r["max_score_change"]), f"{r['max_coefficient_change']:g}",
                          f"{r['max_ks']:.3f}" if "max_ks" in r else "-", groups or "(too many values to group)",
                          "[green]yes[/green]" if r["ok"] else "[red]NO[/red]")
        console.print(table)
        c = result["contrast"]
        console.print(f"for contrast, {c['attribute']}: max KS {c['max_ks']:.3f}")
        console.print(f"written: {target / 'check.json'} and check-ATTRIBUTE.png")
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("models")
def models_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The trained model versions, their held-out AUC and Brier, and which is current."""
    from duebot.risk.model import list_models

    rows = list_models(models_dir())
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=str(models_dir()))
    for column in ("version", "current", "scored by", "AUC lr", "AUC gb", "Brier lr"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["version"], "yes" if r["current"] else "", str(r["scored_by"]), str(r["auc_lr"]),
                      str(r["auc_gb"] or "-"), str(r["brier_lr"]))
    console.print(table)


if __name__ == "__main__":
    app()
