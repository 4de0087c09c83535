"""Macro-F1 and per-class figures for the emotion model on a labelled file, next to a lexicon baseline.

The file's `language:` key picks the baseline: VADER + a distress word list for English, a word list for Chinese
(VADER is English only). The model scores every line as the service does: a line with a Han character goes to the
Chinese model, any other to the English one (the report counts both).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from duebot.emotion.dataset import LABELS, Example, language_of, load
from duebot.emotion.encoder import DEFAULT_ENCODER
from duebot.emotion.model import EmotionModel
from duebot.zh_text import fold

# The baseline's second lexicon: VADER scores polarity only, so negative lines naming a hardship or a loss are
# called distressed and other negative lines angry.
DISTRESS_WORDS = ("died", "passed away", "funeral", "hospital", "cancer", "ill", "sick", "surgery", "lost my job",
                  "laid off", "fired", "redundant", "unemployed", "cope", "coping", "hopeless", "desperate",
                  "struggling", "depress", "anxious", "scared", "terrified", "crying", "tears", "evict",
                  "homeless", "broke", "nothing left", "grief", "grieving", "widow", "can't afford")


# The Chinese baseline: a line naming a hardship or a loss is distressed, else a line with an insult, a swear word
# or a complaint word is angry, else neutral. Written from the domain, not fitted to any labelled file.
ZH_DISTRESS_WORDS = ("去世", "过世", "走了", "丧事", "葬礼", "住院", "医院", "生病", "病了", "癌", "化疗", "手术",
                     "失业", "裁员", "辞退", "开除", "下岗", "没工作", "没收入", "没钱", "困难", "还不起", "交不起",
                     "撑不", "活不", "不想活", "崩溃", "绝望", "抑郁", "焦虑", "难受", "难过", "哭", "求求", "求你",
                     "宽限", "离婚", "欠债", "走投无路")
ZH_ANGRY_WORDS = ("滚", "骗子", "垃圾", "傻", "有病", "神经病", "他妈", "妈的", "操", "卧槽", "烦", "骚扰", "混蛋",
                  "王八蛋", "去死", "不要脸", "抢", "坑", "黑心", "吸血", "恶心", "闭嘴", "别打", "别再", "有完没完",
                  "凭什么", "破", "脑子", "废话", "无语", "气死", "受够", "投诉", "起诉", "律师", "报警")


def zh_lexicon_label(text: str) -> str:
    text = fold(text)  # traditional characters as simplified, like the model sees them
    if any(word in text for word in ZH_DISTRESS_WORDS):
        return "distressed"
    return "angry" if any(word in text for word in ZH_ANGRY_WORDS) else "neutral"


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_label(text: str) -> str:
    lowered = text.lower()
    if any(word in lowered for word in DISTRESS_WORDS):
        return "distressed"
    return "angry" if _vader().polarity_scores(text)["compound"] <= -0.05 else "neutral"


# language → (report key, printed name, labelling function)
BASELINES: dict[str, tuple[str, str, Callable[[str], str]]] = {
    "en": ("baseline_vader_lexicon", "VADER + lexicon", vader_label),
    "zh": ("baseline_zh_lexicon", "zh lexicon (VADER n/a)", zh_lexicon_label),
}


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


def model_name(model: EmotionModel, language: str) -> str:
    if language == "zh" and model.zh is not None:
        return f"{model.zh.name} + LR"
    return "MiniLM + head" if model.encoder == DEFAULT_ENCODER else f"{model.encoder} + head"


def evaluate(model: EmotionModel, data: Path) -> dict[str, Any]:
    examples: list[Example] = load(data)
    language = language_of(data)
    if language not in BASELINES:
        raise ValueError(f"{data}: no baseline for language {language!r} (known: {sorted(BASELINES)})")
    key, name, baseline_label = BASELINES[language]
    gold = [e.label for e in examples]
    results = model.predict_many([e.text for e in examples])
    predicted = [r["label"] for r in results]
    baseline, _ = _timed(lambda: [baseline_label(e.text) for e in examples])
    routes = [model.route(e.text) for e in examples]
    errors = [{"text": e.text, "gold": e.label, "predicted": r["label"], "scores": r["scores"]}
              for e, r in zip(examples, results, strict=True) if e.label != r["label"]]
    legal_misses = [e.text for e, r in zip(examples, results, strict=True) if e.legal_threat and not r["legal_threat"]]
    legal_false = [e.text for e, r in zip(examples, results, strict=True) if r["legal_threat"] and not e.legal_threat]
    return {
        "data": str(data),
        "language": language,
        "examples": len(examples),
        "encoder": model.encoder,
        "model_name": model_name(model, language),
        "zh_encoder": model.zh.encoder if model.zh is not None else None,
        "routed": {lang: routes.count(lang) for lang in ("en", "zh")},
        "model": scores(gold, predicted),
        "legal_threat": _binary_f1([e.legal_threat for e in examples], [r["legal_threat"] for r in results]),
        "baseline": {"key": key, "name": name},
        key: scores(gold, baseline),
        "errors": errors,
        "legal_misses": legal_misses,
        "legal_false_alarms": legal_false,
    }
