"""The dialogue manager behind a small interface; production talks to Rasa's REST webhook.

Legal-disclosure convention: a bot message is uninterruptible (no barge-in) when it carries
`"custom": {"uninterruptible": true}` or `"metadata": {"uninterruptible": true}` (the text may sit in
`text` or in `custom.text`); a custom-only message `{"custom": {"uninterruptible": true}}` marks the text
message right before it (Rasa's REST channel splits a response with text + custom into two messages).
`{"custom": {"hangup": true}}` ends the call after the bot's audio has played.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from duebot.voice.events import BotReply

log = logging.getLogger(__name__)


class Dialogue(Protocol):
    async def respond(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]: ...


def parse_rest_messages(messages: list[dict[str, Any]]) -> list[BotReply]:
    replies: list[BotReply] = []
    for message in messages:
        custom = message.get("custom") if isinstance(message.get("custom"), dict) else {}
        meta = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        flags = {**meta, **custom}
        uninterruptible = bool(flags.get("uninterruptible"))
        hangup = bool(flags.get("hangup"))
        text = str(message.get("text") or custom.get("text") or "").strip()
        if not text:
            if replies and (uninterruptible or hangup):  # a marker for the message before it
                last = replies[-1]
                replies[-1] = BotReply(last.text, last.uninterruptible or uninterruptible,
                                       last.hangup or hangup, {**last.custom, **custom})
            elif hangup:
                replies.append(BotReply("", False, True, custom))
            continue
        replies.append(BotReply(text, uninterruptible, hangup, custom))
    return replies


class RasaRestDialogue:
    """Rasa's REST channel: POST {"sender", "message", "metadata"} → [{"text"|"custom"|...}]."""

    def __init__(self, url: str, timeout: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/webhooks/rest/webhook"):
            self.url += "/webhooks/rest/webhook"
        # Rasa (Sanic) closes idle connections after 5 s, about a call's gap between turns: reusing one that old
        # races the server's close. Pooled connections are dropped well before that.
        self._client = client or httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(keepalive_expiry=2.0))

    async def respond(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        body = {"sender": sender, "message": text, "metadata": metadata}
        try:
            response = await self._client.post(self.url, json=body)
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            # Nothing reached Rasa (no connection, or the server closed it before answering): one retry on a new
            # connection is safe and spares the caller a "technical trouble" goodbye.
            log.warning("Rasa request failed before an answer (%s); retrying once", exc)
            response = await self._client.post(self.url, json=body)
        response.raise_for_status()
        return parse_rest_messages(response.json())

    async def aclose(self) -> None:
        await self._client.aclose()
