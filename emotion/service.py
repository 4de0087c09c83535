"""The emotion service: POST /emotion {"text": ...} → label, scores, negative, legal_threat (loopback HTTP)."""

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
    model.predict("hello")  # warm up: the first encode pays for lazy initialisation, not the first subscriber
    app = FastAPI(title="duebot emotion", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "encoder": model.encoder, "labels": list(model.head.labels)}

    @app.post("/emotion")
    def emotion(request: EmotionRequest) -> dict[str, Any]:
        # a plain def: FastAPI runs it in its thread pool, so encoding never blocks the event loop
        return model.predict(request.text)

    return app
