"""The duebot web service (FastAPI): webhooks, APIs and the console mount here as routers."""

from __future__ import annotations

from fastapi import FastAPI

from duebot import __version__
from duebot.policies.http import router as gate_router


def create_app() -> FastAPI:
    app = FastAPI(title="duebot", version=__version__)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(gate_router)
    return app
