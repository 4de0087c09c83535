"""`duebot emotion serve|train|eval`, and the `duebot eval emotion` command (register `eval_emotion`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from duebot.settings import load_settings

app = typer.Typer(help="Emotion detection: the service Rasa's emotion component calls, its head, its eval.",
                  no_args_is_help=True, add_completion=False)
console = Console()
DEFAULT_PORT = 5065


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface (loopback by default)")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help=f"Port (default: DUEBOT_EMOTION_PORT, else {DEFAULT_PORT})")] = None,
) -> None:
    """Serve POST /emotion on HOST:PORT (trains the head first if the current one is missing)."""
    import uvicorn

    from duebot.emotion.service import create_app

    port = port or load_settings().emotion_port or DEFAULT_PORT
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=False)


@app.command()
def train(force: Annotated[bool, typer.Option(help="Retrain even if nothing changed.")] = False) -> None:
    """Train the English head and the Chinese model on nlu_data/emotion/ when their data, code or encoders changed
    (`duebot train` does this too)."""
    from duebot.emotion.store import train as train_head

    path, trained = train_head(load_settings(), force=force)
    console.print(f"{'trained' if trained else 'up to date'}: {path}")


def eval_emotion(
    data: Annotated[Path, typer.Option(help="Labelled emotion YAML (e.g. evaluation/emotion_heldout/en.yml)",
                                       exists=True, dir_okay=False)],
    report: Annotated[Path, typer.Option(help="Where to write the JSON report")],
) -> None:
    """Score the current emotion model on DATA: macro-F1 and per class, next to a lexicon baseline (VADER for an
    English file; a word list for a `language: zh` file)."""
    from duebot.emotion.evaluate import evaluate
    from duebot.emotion.store import load_model

    summary = evaluate(load_model(load_settings()), data)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    model, base = summary["model"], summary[summary["baseline"]["key"]]
    routed = ", ".join(f"{n} {lang}" for lang, n in summary["routed"].items() if n)
    console.print(f"{summary['examples']} lines from {data} (language {summary['language']}; scored by: {routed})",
                  markup=False, soft_wrap=True)
    width = max(22, len(summary["model_name"]) + 2)
    console.print(f"{'':<{width}}{'macro-F1':>9}{'accuracy':>10}  " + "  ".join(f"{c:>10}" for c in model["per_class"]),
                  soft_wrap=True)
    for name, figures in ((summary["model_name"], model), (summary["baseline"]["name"], base)):
        per_class = "  ".join(f"{c['f1']:>10.3f}" for c in figures["per_class"].values())
        console.print(f"{name:<{width}}{figures['macro_f1']:>9.3f}{figures['accuracy']:>10.3f}  {per_class}",
                      markup=False, soft_wrap=True)
    legal = summary["legal_threat"]
    console.print(f"legal threat: precision {legal['precision']:.3f} recall {legal['recall']:.3f} "
                  f"(support {legal['support']}) → {report}")


app.command("eval")(eval_emotion)
