"""The trained models on disk: $DUEBOT_DATA_DIR/models/emotion-<hash>/, named by a hash of what they were trained
from (the labelled lines, the models' code, the encoders), so `duebot train` retrains them only when one changed.

The folder holds the English head (head.npz, MiniLM embeddings of the `language: en` files) and, when there is a
`language: zh` file, the Chinese model (zh.npz, emotion/zh.py). Lines of any other language are refused: no model
would read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from duebot.emotion import dataset, head, zh
from duebot.emotion.encoder import embed, encoder_name
from duebot.emotion.model import EmotionModel
from duebot.settings import Settings

logger = logging.getLogger(__name__)
PREFIX = "emotion-"
HEAD_FILE = "head.npz"
ZH_FILE = "zh.npz"
LANGUAGES = ("en", "zh")


def data_dir(settings: Settings) -> Path:
    return settings.nlu_dir / "emotion"


def training_inputs(settings: Settings) -> list[Path]:
    return [*sorted(data_dir(settings).glob("*.yml")), Path(head.__file__), Path(zh.__file__)]


def training_hash(settings: Settings, encoder: str | None = None) -> str:
    digest = hashlib.sha256((encoder or encoder_name()).encode() + b"\0" + zh.sentence_encoder().encode() + b"\0")
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
    files = sorted(data_dir(settings).glob("*.yml"))
    unknown = sorted({dataset.language_of(path) for path in files} - set(LANGUAGES))
    if unknown:
        raise ValueError(f"{data_dir(settings)}: no emotion model for language(s) {unknown} (known: {LANGUAGES})")
    examples = dataset.load_dir(data_dir(settings), language="en")
    vectors = embed(encoder, [e.text for e in examples])
    fitted = head.fit(vectors, [e.label for e in examples], [e.legal_threat for e in examples])
    zh_examples = dataset.load_dir(data_dir(settings), language="zh")
    zh_model = zh.fit([e.text for e in zh_examples], [e.label for e in zh_examples],
                      [e.legal_threat for e in zh_examples]) if zh_examples else None
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a concurrent `duebot serve` never sees half a model.
    tmp = Path(tempfile.mkdtemp(prefix=".emotion-", dir=settings.models_dir))
    fitted.save(tmp / HEAD_FILE)
    meta = {"encoder": encoder, "labels": list(fitted.labels), "examples": len(examples),
            "legal_threat_examples": sum(e.legal_threat for e in examples)}
    if zh_model is not None:
        zh_model.save(tmp / ZH_FILE)
        meta["zh"] = {"model": zh_model.name, "encoder": zh_model.encoder or None, "examples": len(zh_examples),
                      "legal_threat_examples": sum(e.legal_threat for e in zh_examples),
                      "ngrams": len(zh_model.vocabulary)}
    (tmp / "meta.json").write_text(json.dumps({
        **meta, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - started, 2)}, indent=2, ensure_ascii=False))
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
    zh_model = zh.ZhModel.load(folder / ZH_FILE) if (folder / ZH_FILE).exists() else None
    return EmotionModel(encoder, head.Head.load(folder / HEAD_FILE), zh_model)
