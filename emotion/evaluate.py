"""Macro-F1 and per-class figures for the emotion model on a labelled file, next to a lexicon baseline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from duebot.emotion.dataset import LABELS, Example, load
from duebot.emotion.model import EmotionModel

# The baseline's second lexicon: VADER scores polarity only, so negative lines naming a hardship or a loss are
# called distressed and other negative lines angry.
DISTRESS_WORDS = ("died", "passed away", "funeral", "hospital", "cancer", "ill", "sick", "surgery", "lost my job",
                  "laid off", "fired", "redundant", "unemployed", "cope", "coping", "hopeless", "desperate",
                  "struggling", "depress", "anxious", "scared", "terrified", "crying", "tears", "evict",
                  "homeless", "broke", "nothing left", "grief", "grieving", "widow", "can't afford")


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_label(text: str) -> str:
    lowered = text.lower()
    if any(word in lowered for word in DISTRESS_WORDS):
        return "distressed"
    return "angry" if _vader().polarity_scores(text)["compound"] <= -0.05 else "neutral"


def scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    per_class: dict[str, dict[str, float]] = {}
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                            "support": sum(g == label for g in gold)}
    confusion = {g: {p: sum(a == g and b == p for a, b in zip(gold, predicted, strict=True)) for p in LABELS}
                 for g in LABELS}
    return {"macro_f1": round(sum(c["f1"] for c in per_class.values()) / len(LABELS), 4),
            "accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1), 4),
            "per_class": per_class, "confusion": confusion}


def _binary_f1(gold: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    tp = sum(g and p for g, p in zip(gold, predicted, strict=True))
    fp = sum(p and not g for g, p in zip(gold, predicted, strict=True))
    fn = sum(g and not p for g, p in zip(gold, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": sum(gold)}


def _timed(fn: Callable[[], list[str]]) -> tuple[list[str], float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def evaluate(model: EmotionModel, data: Path) -> dict[str, Any]:
    examples: list[Example] = load(data)
    gold = [e.label for e in examples]
    results = model.predict_many([e.text for e in examples])
    predicted = [r["label"] for r in results]
    baseline, _ = _timed(lambda: [vader_label(e.text) for e in examples])
    errors = [{"text": e.text, "gold": e.label, "predicted": r["label"], "scores": r["scores"]}
              for e, r in zip(examples, results, strict=True) if e.label != r["label"]]
    return {
        "data": str(data),
        "examples": len(examples),
        "encoder": model.encoder,
        "model": scores(gold, predicted),
        "legal_threat": _binary_f1([e.legal_threat for e in examples], [r["legal_threat"] for r in results]),
        "baseline_vader_lexicon": scores(gold, baseline),
        "errors": errors,
    }
