"""The one place that builds the clients services share: Redis, the evidence inbox, the account store, Rasa, the gate,
the outbound SMS sender.

What a missing `REDIS_URL` means is decided here, once: `duebot serve` always hands its children the URL of the
Redis it runs (embedded or external), so a service it starts never gets here without one. Any other process
(a CLI command on the operator's machine) uses the embedded Redis of a `duebot serve` running beside it, when that
one answers; otherwise it stops with `RedisNotConfigured`, which names the variable to set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from duebot.settings import RedisAddress, SettingsError, load_settings

if TYPE_CHECKING:
    from duebot.accounts.store import AccountStore
    from duebot.channels.rasa_client import RasaRouter
    from duebot.channels.sms.sender import SmsSender
    from duebot.evidence.inbox import EvidenceInbox
    from duebot.policies.reserve import GatesByPack
    from duebot.settings import Settings


class RedisNotConfigured(SettingsError):
    pass


def redis_url(settings: Settings | None = None) -> str:
    """REDIS_URL, else the embedded Redis of a local `duebot serve` when it answers."""
    settings = settings or load_settings()
    if settings.redis.url:
        return settings.redis.url
    from duebot.secrets import secret

    embedded = RedisAddress(settings.host, settings.redis.embedded_port, 0, secret("redis_password", settings)).url
    try:
        redis.Redis.from_url(embedded, socket_connect_timeout=1.0).ping()
    except redis.RedisError:
        raise RedisNotConfigured(f"REDIS_URL is not set and no `duebot serve` Redis answers at {settings.host}:"
                                 f"{settings.redis.embedded_port} (DUEBOT_REDIS_PORT): set REDIS_URL or start "
                                 "`duebot serve`") from None
    return embedded


def redis_client(settings: Settings | None = None) -> redis.Redis:
    return redis.Redis.from_url(redis_url(settings))


def evidence_inbox(client: redis.Redis | None = None) -> EvidenceInbox:
    """Where every producer submits evidence records (the single writer appends them to the log)."""
    from duebot.evidence.inbox import EvidenceInbox

    return EvidenceInbox(client if client is not None else redis_client())


def account_store(settings: Settings | None = None) -> AccountStore:
    from duebot.accounts.store import AccountStore, default_url

    return AccountStore(default_url(settings or load_settings()))


def rasa_router(settings: Settings | None = None) -> RasaRouter:
    """The Rasa server of each served language, through the one Rasa client."""
    from duebot.channels.rasa_client import RasaClient, RasaRouter

    settings = settings or load_settings()
    return RasaRouter({lang: RasaClient(settings.rasa_url_for(lang)) for lang in settings.served_languages})


def gates(client: redis.Redis | None = None) -> GatesByPack:
    """The live gate of every compliance pack; its decisions are evidence records."""
    from duebot.evidence.inbox import InboxAuditSink
    from duebot.policies.reserve import GatesByPack

    client = client if client is not None else redis_client()
    return GatesByPack(client, InboxAuditSink(evidence_inbox(client)))


def sms_configured(settings: Settings | None = None) -> str | None:
    """None when outbound Twilio SMS can be sent; else what is missing, naming the variables."""
    settings = settings or load_settings()
    missing = []
    if not settings.twilio.auth_token.get_secret_value():
        missing.append("TWILIO_AUTH_TOKEN")
    if not (settings.twilio.from_number or settings.twilio.messaging_service_sid):
        missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    return f"no SMS carrier configured (set {' and '.join(missing)})" if missing else None


def sms_sender(settings: Settings | None = None, client: redis.Redis | None = None,
               store: AccountStore | None = None) -> SmsSender | None:
    """The outbound SMS sender (rate limit, the gate of the account's pack, Twilio, evidence), built from the
    settings' `twilio` and `sms` groups; None when Twilio SMS is not configured (`sms_configured` says why)."""
    settings = settings or load_settings()
    if sms_configured(settings) is not None:
        return None
    from duebot.channels.sms.config import SmsSettings
    from duebot.channels.sms.sender import SmsSender, twilio_client

    sms = SmsSettings.from_settings(settings)
    client = client if client is not None else redis_client(settings)
    return SmsSender(sms, gates(client), store if store is not None else account_store(settings),
                     twilio_client(sms), client, evidence_inbox(client))
