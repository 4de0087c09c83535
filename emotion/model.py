"""Encoder + head: one subscriber line in, the emotion the dialogue policy reads out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from duebot.emotion.encoder import embed
from duebot.emotion.head import Head
from duebot.emotion.legal import mentions_legal_threat

LEGAL_THRESHOLD = 0.5


@dataclass
class EmotionModel:
    encoder: str
    head: Head

    def predict_many(self, texts: list[str]) -> list[dict[str, Any]]:
        if not texts:
            return []
        vectors = embed(self.encoder, texts)
        probs = self.head.probabilities(vectors)
        legal = self.head.legal_probability(vectors)
        return [self._result(text, row, float(p_legal)) for text, row, p_legal in zip(texts, probs, legal,
                                                                                         strict=True)]

    def predict(self, text: str) -> dict[str, Any]:
        return self.predict_many([text])[0]

    def _result(self, text: str, row: np.ndarray, p_legal: float) -> dict[str, Any]:
        scores = {label: round(float(p), 4) for label, p in zip(self.head.labels, row, strict=True)}
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
