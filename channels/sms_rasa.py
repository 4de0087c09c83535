"""Forward a subscriber's text to Rasa's REST channel (shared by the SMS and web chat channels).

The channel, never the subscriber, sets `metadata.account_id`: the bot trusts it to find the account. There is
one Rasa server per conversation language (`duebot serve` runs a zh one when a zh model exists); `RasaRouter`
sends each conversation to the server of the account's language and tells the bot which one it chose
(`metadata.language`), so the prompts match the model that reads the subscriber."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from duebot.config import DEFAULT_LANGUAGE, Settings, conversation_language

logger = logging.getLogger(__name__)


class RasaUnavailable(RuntimeError):
    pass


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/webhooks/rest/webhook"
        # One pooled client per process: a new TCP connection per message would double the latency.
        self._client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=32))

    async def ask(self, sender: str, text: str, account_id: str, channel: str,
                  language: str | None = None) -> list[dict[str, Any]]:
        """The bot's messages in order: dicts with `text` (and `buttons`); custom payloads are dropped."""
        metadata = {"account_id": account_id, "channel": channel, **({"language": language} if language else {})}
        body = {"sender": sender, "message": text, "metadata": metadata}
        try:
            response = await self._client.post(self.url, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"rasa: {exc}") from exc
        return [m for m in response.json() if isinstance(m, dict) and m.get("text")]

    async def aclose(self) -> None:
        await self._client.aclose()


class RasaRouter:
    """The Rasa server of each served language; a conversation goes to its account's language."""

    def __init__(self, clients: Mapping[str, RasaClient]) -> None:
        if DEFAULT_LANGUAGE not in clients:
            raise ValueError(f"a Rasa server for the default language ({DEFAULT_LANGUAGE}) is required")
        self.clients = dict(clients)
        self._fallback_logged: set[str] = set()

    @classmethod
    def of(cls, rasa: RasaClient | RasaRouter) -> RasaRouter:
        """A single client is the default language's server (tests and single-language deployments)."""
        return rasa if isinstance(rasa, RasaRouter) else cls({DEFAULT_LANGUAGE: rasa})

    @classmethod
    def from_settings(cls, settings: Settings) -> RasaRouter:
        return cls({lang: RasaClient(settings.rasa_url_for(lang)) for lang in settings.served_languages})

    def language(self, account_language: str | None) -> str:
        chosen = conversation_language(account_language, self.clients)
        wanted = conversation_language(account_language)
        if chosen != wanted and wanted not in self._fallback_logged:
            self._fallback_logged.add(wanted)
            logger.warning("no Rasa server for %s conversations (no %s model served): they are held in %s",
                           wanted, wanted, chosen)
        return chosen

    async def ask(self, sender: str, text: str, account_id: str, channel: str,
                  account_language: str | None = None) -> list[dict[str, Any]]:
        language = self.language(account_language)
        client = self.clients[language]
        if language == DEFAULT_LANGUAGE and conversation_language(account_language) == DEFAULT_LANGUAGE:
            # the default language's conversations go exactly as before there was a second language
            return await client.ask(sender, text, account_id, channel)
        return await client.ask(sender, text, account_id, channel, language=language)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
