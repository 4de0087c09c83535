"""The one place that builds the clients services share: Redis, the evidence inbox, the account store, Rasa, the gate.

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
