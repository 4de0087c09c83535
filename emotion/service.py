"""The emotion service: POST /emotion {"text": ...} → label, scores, negative, legal_threat (loopback HTTP).

English and Chinese lines alike: a line with a Han character is scored by the Chinese model (see model.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from duebot.emotion.model import EmotionModel
from duebot.emotion.store import load_model
from duebot.settings import load_settings


class EmotionRequest(BaseModel):
    text: str = Field(max_length=2000)


def create_app(model: EmotionModel | None = None) -> FastAPI:
    model = model or load_model(load_settings())
    # warm up: the first encode pays for lazy initialisation, not the first subscriber (each language's model)
    model.predict_many(["hello", "你好"])
    app = FastAPI(title="duebot emotion", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "encoder": model.encoder, "labels": list(model.head.labels),
                "zh_model": model.zh.name if model.zh is not None else None}

    @app.post("/emotion")
    def emotion(request: EmotionRequest) -> dict[str, Any]:
        # a plain def: FastAPI runs it in its thread pool, so encoding never blocks the event loop
        return model.predict(request.text)

    return app
