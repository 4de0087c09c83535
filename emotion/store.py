"""The trained head on disk: $DUEBOT_DATA_DIR/models/emotion-<hash>/, named by a hash of what it was trained
from (the labelled lines, the head's code, the encoder), so `duebot train` retrains it only when one changed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from duebot.emotion import dataset, head
from duebot.emotion.encoder import embed, encoder_name
from duebot.emotion.model import EmotionModel
from duebot.settings import Settings

logger = logging.getLogger(__name__)
PREFIX = "emotion-"
HEAD_FILE = "head.npz"


def data_dir(settings: Settings) -> Path:
    return settings.nlu_dir / "emotion"


def training_inputs(settings: Settings) -> list[Path]:
    return [*sorted(data_dir(settings).glob("*.yml")), Path(head.__file__)]


def training_hash(settings: Settings, encoder: str | None = None) -> str:
    digest = hashlib.sha256((encoder or encoder_name()).encode() + b"\0")
    for path in training_inputs(settings):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def head_dir(settings: Settings, encoder: str | None = None) -> Path:
    return settings.models_dir / f"{PREFIX}{training_hash(settings, encoder)}"


def train(settings: Settings, force: bool = False, encoder: str | None = None) -> tuple[Path, bool]:
    """Return the head's folder and whether it was (re)trained now."""
    encoder = encoder or encoder_name()
    target = head_dir(settings, encoder)
    if (target / HEAD_FILE).exists() and not force:
        return target, False
    started = time.monotonic()
    examples = dataset.load_dir(data_dir(settings))
    vectors = embed(encoder, [e.text for e in examples])
    fitted = head.fit(vectors, [e.label for e in examples], [e.legal_threat for e in examples])
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a concurrent `duebot serve` never sees half a model.
    tmp = Path(tempfile.mkdtemp(prefix=".emotion-", dir=settings.models_dir))
    fitted.save(tmp / HEAD_FILE)
    (tmp / "meta.json").write_text(json.dumps({
        "encoder": encoder, "labels": list(fitted.labels), "examples": len(examples),
        "legal_threat_examples": sum(e.legal_threat for e in examples),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - started, 2)}, indent=2))
    if force and target.exists():
        shutil.rmtree(target)
    try:
        os.rename(tmp, target)
    except OSError:  # another process trained the same inputs meanwhile: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return target, True


def load_model(settings: Settings, train_if_missing: bool = True) -> EmotionModel:
    encoder = encoder_name()
    folder = head_dir(settings, encoder)
    if not (folder / HEAD_FILE).exists():
        if not train_if_missing:
            raise FileNotFoundError(f"no emotion head for the current data ({folder.name}): run `duebot train`")
        logger.warning("no emotion head %s yet: training it now", folder.name)
        folder, _ = train(settings, encoder=encoder)
    return EmotionModel(encoder, head.Head.load(folder / HEAD_FILE))
