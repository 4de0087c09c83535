"""`duebot eval nlu`: score the trained model on any Rasa NLU YAML file (e.g. the held-out set).

Rasa's own `rasa test nlu` does the predicting and writes its reports and confusion matrix; this module
runs it in Rasa's environment and condenses the intent report into accuracy, macro-F1 and per-intent figures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from duebot.settings import Settings
from duebot.training.train import model_path, rasa_env


def evaluate(settings: Settings, data: Path, out_dir: Path, log: Path, language: str = "en") -> dict[str, Any]:
    model = model_path(settings, language)
    if not model.exists():
        raise FileNotFoundError(f"no trained {language} model for the current training data: "
                                f"run `duebot train --lang {language}` ({model})")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    argv = [str(settings.rasa_bin), "test", "nlu", "--nlu", str(data.resolve()), "--model", str(model),
            "--out", str(out_dir.resolve())]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        result = subprocess.run(argv, cwd=settings.bot_dir, env=rasa_env(), stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"rasa test nlu failed (exit {result.returncode}); see {log}")
    report = json.loads((out_dir / "intent_report.json").read_text())
    per_intent = {
        name: {"precision": row["precision"], "recall": row["recall"], "f1": row["f1-score"],
               "support": row["support"]}
        for name, row in report.items() if isinstance(row, dict) and "f1-score" in row
        and name not in ("macro avg", "weighted avg", "micro avg")
    }
    summary = {
        "language": language,
        "data": str(data),
        "model": model.name,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "per_intent": per_intent,
        "entities": _entity_summary(out_dir),
        "confusion_matrix_png": str(out_dir / "intent_confusion_matrix.png"),
        "errors": json.loads((out_dir / "intent_errors.json").read_text())
        if (out_dir / "intent_errors.json").exists() else [],
    }
    return summary


def _entity_summary(out_dir: Path) -> dict[str, Any]:
    """Per-entity precision/recall/F1 of DIET's entity extraction (empty when the data has no entities)."""
    path = out_dir / "DIETClassifier_report.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    return {name: {"precision": row["precision"], "recall": row["recall"], "f1": row["f1-score"],
                   "support": row["support"]}
            for name, row in report.items() if isinstance(row, dict) and "f1-score" in row
            and name not in ("weighted avg", "micro avg")}
