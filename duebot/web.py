"""The duebot web service (FastAPI): webhooks, APIs and the console mount here as routers."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from duebot import __version__, clients
from duebot.campaigns.http import router as campaign_router
from duebot.channels.billing.http import router as billing_router
from duebot.channels.chat.webchat import router as chat_router
from duebot.channels.sms.webhook import router as sms_router
from duebot.evidence.inbox import InboxAuditSink
from duebot.payments.http import router as payment_router
from duebot.payments.page import router as payment_page_router
from duebot.policies.http import router as gate_router
from duebot.policies.http import set_audit_sink
from duebot.settings import load_settings


def _twilio_voice_router() -> APIRouter:
    """Twilio Media Streams calls; loads the ASR and TTS models (~300 MB), so only when asked for."""
    from duebot.channels.twilio_voice.router import TwilioVoiceConfig, create_twilio_voice_router
    from duebot.voice.evidence import InboxEvidenceSink
    from duebot.voice.runtime import VoiceRuntime

    runtime = VoiceRuntime.from_env(evidence=InboxEvidenceSink(clients.evidence_inbox()))
    return create_twilio_voice_router(TwilioVoiceConfig.from_settings(), runtime)


def create_app() -> FastAPI:
    settings = load_settings()
    app = FastAPI(title="duebot", version=__version__)
    if settings.redis.url:
        # Under `duebot serve`, gate decisions made over HTTP become evidence records. A web app built without
        # Redis (unit tests of one router) keeps the gate's offline audit file.
        set_audit_sink(InboxAuditSink(clients.evidence_inbox()))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(gate_router)
    app.include_router(payment_router)
    app.include_router(payment_page_router)  # GET/POST /pay: the payment page (issue 20)
    app.include_router(sms_router)
    app.include_router(chat_router)
    app.include_router(campaign_router)
    app.include_router(billing_router)  # issue 20: billing/CRM updates (channels/billing/http.py)
    if settings.twilio.voice_enabled:
        app.include_router(_twilio_voice_router())
    from duebot.console.app import install as install_console  # issue 10: the web console under /console

    install_console(app)
    # issue 18: no route reads a body over DUEBOT_MAX_BODY_BYTES (the account imports: DUEBOT_MAX_UPLOAD_BYTES)
    from duebot.console.web_guard import BodyLimit

    uploads = {path: settings.api.max_upload_bytes for path in ("/campaigns/import", "/console/campaigns/import")}
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes, uploads=uploads)
    return app
