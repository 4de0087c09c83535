"""The duebot web service (FastAPI): webhooks, APIs and the console mount here as routers."""

from __future__ import annotations

import os

import redis
from fastapi import APIRouter, FastAPI

from duebot import __version__
from duebot.campaigns.http import router as campaign_router
from duebot.channels.twilio_sms import router as sms_router
from duebot.channels.webchat import router as chat_router
from duebot.evidence.inbox import EvidenceInbox, InboxAuditSink
from duebot.payment_api import router as payment_router
from duebot.policies.http import router as gate_router
from duebot.policies.http import set_audit_sink


def _twilio_voice_router() -> APIRouter:
    """Twilio Media Streams calls; loads the ASR and TTS models (~300 MB), so only when asked for."""
    from duebot.channels.twilio_voice import TwilioVoiceConfig, create_twilio_voice_router
    from duebot.voice.evidence import InboxEvidenceSink
    from duebot.voice.runtime import VoiceRuntime

    url = os.environ["REDIS_URL"]
    runtime = VoiceRuntime.from_env(evidence=InboxEvidenceSink(EvidenceInbox(redis.Redis.from_url(url))))
    return create_twilio_voice_router(TwilioVoiceConfig.from_env(), runtime)


def create_app() -> FastAPI:
    app = FastAPI(title="duebot", version=__version__)
    if url := os.environ.get("REDIS_URL"):
        # gate decisions made over HTTP become evidence records (offline CLI checks go to the audit file)
        set_audit_sink(InboxAuditSink(EvidenceInbox(redis.Redis.from_url(url))))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(gate_router)
    app.include_router(payment_router)
    app.include_router(sms_router)
    app.include_router(chat_router)
    app.include_router(campaign_router)
    if os.environ.get("DUEBOT_TWILIO_VOICE") == "1":
        app.include_router(_twilio_voice_router())
    from duebot.console.app import install as install_console  # issue 10: the web console under /console

    install_console(app)
    return app
