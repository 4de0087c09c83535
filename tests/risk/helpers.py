"""Shared by the risk tests: one small synthetic history and a model trained on it, made once per session."""

from __future__ import annotations

from pathlib import Path

from duebot.risk.data import History, read_history, write_rows
from duebot.risk.features import selected
from duebot.risk.model import Trained, train
from duebot.risk.synth import COLUMNS, generate

ROWS = 6000


def history(directory: Path) -> History:
    path = directory / "history.csv"
    write_rows(path, generate(ROWS, seed=7), COLUMNS)
    return read_history(path)


def trained(h: History, boosted: bool = False, seed: int = 0) -> Trained:
    return train(h.inputs, h.labels, features=selected(False), holdout=0.25, seed=seed, horizon_days=30,
                 warning_below=60, data={"sha256": h.sha256, "rows": len(h.inputs)}, boosted=boosted)
