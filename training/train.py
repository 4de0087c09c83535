"""Train one Rasa model per language, only when its inputs changed: each model file is named by their hash.

Every language shares the domain, the stories/rules and the custom NLU components; it has its own pipeline
config (`bot/config.yml` for English, `bot/config-<lang>.yml` otherwise) and its own NLU examples
(`nlu_data/<lang>/`). English keeps its original file name `duebot-<hash>.tar.gz` (so models trained before
there was a second language stay valid); every other language is `duebot-<lang>-<hash>.tar.gz`.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from duebot.settings import Settings, child_environment

MODEL_PREFIX = "duebot-"
LANGUAGES = ("en", "zh")
LANGUAGE = "en"  # the default language: the one an account without a language is talked to in


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return language


def config_path(settings: Settings, language: str = LANGUAGE) -> Path:
    check_language(language)
    return settings.bot_dir / ("config.yml" if language == "en" else f"config-{language}.yml")


def nlu_path(settings: Settings, language: str = LANGUAGE) -> Path:
    return settings.nlu_dir / check_language(language)


def training_inputs(settings: Settings, language: str = LANGUAGE) -> list[Path]:
    bot = settings.bot_dir
    files = [config_path(settings, language), bot / "domain.yml"]
    files += sorted((bot / "components").glob("*.py"))  # custom NLU components are part of the model's graph
    files += sorted(p for p in (bot / "data").rglob("*.yml"))
    files += sorted(p for p in nlu_path(settings, language).rglob("*"))
    return [p for p in files if p.is_file()]


def training_hash(settings: Settings, language: str = LANGUAGE) -> str:
    digest = hashlib.sha256()
    for path in training_inputs(settings, language):
        digest.update(str(path.relative_to(settings.root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_name(language: str, digest: str) -> str:
    tag = "" if check_language(language) == "en" else f"{language}-"
    return f"{MODEL_PREFIX}{tag}{digest}.tar.gz"


def model_path(settings: Settings, language: str = LANGUAGE) -> Path:
    """Where the model for the current training inputs of LANGUAGE is (or will be, once trained)."""
    return settings.models_dir / model_name(language, training_hash(settings, language))


def rasa_env() -> dict[str, str]:
    return child_environment({
        "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })


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


def train(settings: Settings, force: bool = False, log: Path | None = None,
          language: str = LANGUAGE) -> tuple[Path, bool]:
    """Return the model path of LANGUAGE and whether it was (re)trained now (the emotion head too)."""
    train_emotion_head(settings, force=force, log=log)
    target = model_path(settings, language)
    if target.exists() and not force:
        return target, False
    if not settings.rasa_bin.exists():
        raise FileNotFoundError(f"Rasa is not installed at {settings.rasa_bin}: run `make setup`")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    data = [str(settings.bot_dir / "data"), str(nlu_path(settings, language))]
    argv = [
        str(settings.rasa_bin), "train",
        "--config", str(config_path(settings, language)),
        "--domain", str(settings.bot_dir / "domain.yml"),
        "--data", *data,
        "--out", str(settings.models_dir),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]
    # the configs name modules under bot/ (components.emotion_component): Rasa must import them while training
    env = {**rasa_env(), "PYTHONPATH": str(settings.bot_dir)}
    if log is None:
        subprocess.run(argv, check=True, cwd=settings.bot_dir, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n=== rasa train ({language}) → {target.name}\n".encode())
            out.flush()
            result = subprocess.run(argv, cwd=settings.bot_dir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise RuntimeError(f"rasa train ({language}) failed (exit {result.returncode}); see {log}")
    if not target.exists():
        raise RuntimeError(f"rasa train finished but {target} is missing")
    return target, True


def train_all(settings: Settings, force: bool = False, log: Path | None = None,
              languages: tuple[str, ...] = LANGUAGES) -> list[tuple[str, Path, bool]]:
    """Bring the model of every language up to date, one after the other (each takes the machine's cores)."""
    return [(lang, *train(settings, force=force, log=log, language=lang)) for lang in languages]
