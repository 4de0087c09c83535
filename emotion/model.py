"""Encoder + head: one subscriber line in, the emotion the dialogue policy reads out.

Each line is routed by its script (`duebot.zh_text.is_chinese`): a line with a Han character goes to the Chinese
model (character n-grams + multilingual-e5-small, trained on nlu_data/emotion/zh.yml), any other line to the English
one (MiniLM + head, trained on en.yml). Both answer with the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from duebot.emotion.encoder import embed
from duebot.emotion.head import Head
from duebot.emotion.legal import mentions_legal_threat
from duebot.emotion.zh import ZhModel
from duebot.zh_text import is_chinese

LEGAL_THRESHOLD = 0.5


@dataclass
class EmotionModel:
    encoder: str
    head: Head
    zh: ZhModel | None = None  # None: every line goes to the English head

    def route(self, text: str) -> str:
        """Which model scores TEXT: "zh" or "en"."""
        return "zh" if self.zh is not None and is_chinese(text) else "en"

    def predict_many(self, texts: list[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(texts)
        routes = [self.route(t) for t in texts]
        for language in ("en", "zh"):
            positions = [i for i, r in enumerate(routes) if r == language]
            if not positions:
                continue
            batch = [texts[i] for i in positions]
            if language == "zh":
                assert self.zh is not None
                probs, legal = self.zh.predict(batch)
                labels = self.zh.labels
            else:
                vectors = embed(self.encoder, batch)
                probs, legal = self.head.probabilities(vectors), self.head.legal_probability(vectors)
                labels = self.head.labels
            for i, text, row, p_legal in zip(positions, batch, probs, legal, strict=True):
                results[i] = _result(labels, text, row, float(p_legal))
        return [r for r in results if r is not None]

    def predict(self, text: str) -> dict[str, Any]:
        return self.predict_many([text])[0]


def _result(labels: tuple[str, ...], text: str, row: np.ndarray, p_legal: float) -> dict[str, Any]:
    scores = {label: round(float(p), 4) for label, p in zip(labels, row, strict=True)}
    label = max(scores, key=scores.__getitem__)
    return {
        "label": label,
        "score": scores[label],
        "scores": scores,
        # How negative the line is, whatever the kind: what the de-escalation thresholds compare against.
        "negative": round(1.0 - scores.get("neutral", 0.0), 4),
        "legal_threat": p_legal >= LEGAL_THRESHOLD or mentions_legal_threat(text),
        "legal_score": round(p_legal, 4),
    }
