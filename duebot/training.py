"""Train the Rasa model only when its inputs changed: the model file is named by their hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from duebot.config import Settings

MODEL_PREFIX = "duebot-"


LANGUAGE = "en"  # the dialogue model's language: NLU examples come from nlu_data/<LANGUAGE>/


def training_inputs(settings: Settings) -> list[Path]:
    bot = settings.bot_dir
    files = [bot / "config.yml", bot / "domain.yml"]
    files += sorted((bot / "components").glob("*.py"))  # custom NLU components are part of the model's graph
    files += sorted(p for p in (bot / "data").rglob("*.yml"))
    files += sorted(p for p in (settings.nlu_dir / LANGUAGE).rglob("*.yml"))
    return files


def training_hash(settings: Settings) -> str:
    digest = hashlib.sha256()
    for path in training_inputs(settings):
        digest.update(str(path.relative_to(settings.root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(settings: Settings) -> Path:
    return settings.models_dir / f"{MODEL_PREFIX}{training_hash(settings)}.tar.gz"


def rasa_env() -> dict[str, str]:
    return {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def train_emotion_head(settings: Settings, force: bool = False, log: Path | None = None) -> tuple[Path, bool]:
    """The emotion head has its own hash (its data, code and encoder; duebot/emotion/store.py), so a change to
    the emotion lines retrains it in seconds without retraining the Rasa model, and vice versa."""
    from duebot.emotion.store import train as train_head

    path, trained = train_head(settings, force=force)
    if log is not None and trained:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(f"emotion head trained: {path}\n")
    return path, trained


def train(settings: Settings, force: bool = False, log: Path | None = None) -> tuple[Path, bool]:
    """Return the model path and whether it was (re)trained now (the emotion head is brought up to date too)."""
    train_emotion_head(settings, force=force, log=log)
    target = model_path(settings)
    if target.exists() and not force:
        return target, False
    if not settings.rasa_bin.exists():
        raise FileNotFoundError(f"Rasa is not installed at {settings.rasa_bin}: run `make setup`")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    data = [str(settings.bot_dir / "data"), str(settings.nlu_dir / LANGUAGE)]
    argv = [
        str(settings.rasa_bin), "train",
        "--config", str(settings.bot_dir / "config.yml"),
        "--domain", str(settings.bot_dir / "domain.yml"),
        "--data", *data,
        "--out", str(settings.models_dir),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]
    # config.yml names modules under bot/ (components.emotion_component): Rasa must import them while training
    env = {**rasa_env(), "PYTHONPATH": str(settings.bot_dir)}
    if log is None:
        subprocess.run(argv, check=True, cwd=settings.bot_dir, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            result = subprocess.run(argv, cwd=settings.bot_dir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise RuntimeError(f"rasa train failed (exit {result.returncode}); see {log}")
    if not target.exists():
        raise RuntimeError(f"rasa train finished but {target} is missing")
    return target, True
