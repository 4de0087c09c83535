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

from duebot.secrets import account_signature
from duebot.settings import DEFAULT_LANGUAGE, Settings, conversation_language

logger = logging.getLogger(__name__)

# Rasa 3.6 reads a message whose text, once `str.strip()`ed, starts with "/" as a command, not as words
# (RegexMessageHandler → YAMLStoryReader.unpack_regex_message): `/intent`, `/intent@0.9`, `/intent{"entity": 1}`,
# its own intents included — /restart (action_restart: every slot back to its initial value), /back (action_back:
# the last turn undone), /session_start. "EXTERNAL: " is how Rasa writes an intent the server triggered into the
# tracker. A subscriber writes neither: `subscriber_text` takes them off before Rasa sees the message.
COMMAND_PREFIXES = ("/", "EXTERNAL:")
# The one command a channel sends itself: the voice session's opening message (`VoiceConfig.start_message`,
# "/greet"), which it marks `input: call_start` in the metadata. Metadata is the channel's, never the subscriber's.
CHANNEL_COMMAND_INPUT = "call_start"


def subscriber_text(text: str) -> str:
    """What a subscriber wrote, as Rasa must read it: words, never a command. A text Rasa would take for a
    command loses its control prefixes (and the whitespace around them, which Rasa strips) until none is left:
    "/help" is read as "help", " //restart" as "restart", `/inform{"digits": "4472"}` as the words
    `inform{"digits": "4472"}`. Any other text is returned as it is."""
    if not text.strip().startswith(COMMAND_PREFIXES):
        return text
    words = text
    while (words := words.strip()).startswith(COMMAND_PREFIXES):
        words = words.removeprefix(next(prefix for prefix in COMMAND_PREFIXES if words.startswith(prefix)))
    return words


class RasaUnavailable(RuntimeError):
    pass


class RasaClient:
    """The one client of Rasa's REST channel, for SMS, chat and voice.

    One retry policy: a request is sent again (once, on a new connection) only when it never reached Rasa — no
    connection, or the server closed a pooled connection before answering. Anything else may have been taken as
    a turn already, so it is never repeated."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/")
        if not self.url.endswith("/webhooks/rest/webhook"):
            self.url += "/webhooks/rest/webhook"
        # One pooled client per process: a new TCP connection per message would double the latency. Rasa (Sanic)
        # closes idle connections after 5 s, about a caller's gap between turns: reusing one that old races the
        # server's close, so pooled connections are dropped well before that.
        self._client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=32,
                                                                             keepalive_expiry=2.0))

    async def messages(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Every message of the bot's answer, as Rasa sent them (text, buttons, custom payloads). An account in
        the metadata is signed for this conversation: the actions believe no other (bot/actions/turn.py). `text`
        is the subscriber's and reaches Rasa as words (`subscriber_text`), except a channel's own opening command
        (metadata `input: call_start`)."""
        if metadata.get("account_id"):
            metadata = {**metadata, "account_sig": account_signature(sender, str(metadata["account_id"]))}
        if metadata.get("input") != CHANNEL_COMMAND_INPUT and (words := subscriber_text(text)) != text:
            # kept beside the words Rasa reads, so the tracker still holds what the subscriber sent
            logger.info("conversation %s: control syntax in a subscriber's message was read as words", sender)
            text, metadata = words, {**metadata, "text_as_written": text}
        body = {"sender": sender, "message": text, "metadata": metadata}
        try:
            try:
                response = await self._client.post(self.url, json=body)
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                logger.warning("Rasa request failed before an answer (%s); retrying once", exc)
                response = await self._client.post(self.url, json=body)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaUnavailable(f"rasa: {exc}") from exc
        return [m for m in answer if isinstance(m, dict)] if isinstance(answer, list) else []

    async def ask(self, sender: str, text: str, account_id: str, channel: str,
                  language: str | None = None) -> list[dict[str, Any]]:
        """The bot's text messages in order: dicts with `text` (and `buttons`); custom payloads are dropped."""
        metadata = {"account_id": account_id, "channel": channel, **({"language": language} if language else {})}
        return [m for m in await self.messages(sender, text, metadata) if m.get("text")]

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
