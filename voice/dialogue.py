"""The dialogue manager behind a small interface; production talks to Rasa's REST webhook.

Legal-disclosure convention: a bot message is uninterruptible (no barge-in) when it carries
`"custom": {"uninterruptible": true}` or `"metadata": {"uninterruptible": true}` (the text may sit in
`text` or in `custom.text`); a custom-only message `{"custom": {"uninterruptible": true}}` marks the text
message right before it (Rasa's REST channel splits a response with text + custom into two messages).
`{"custom": {"hangup": true}}` ends the call after the bot's audio has played.
"""

from __future__ import annotations

from typing import Any, Protocol

from duebot.channels.rasa_client import RasaClient
from duebot.voice.events import BotReply


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
    """Rasa's REST channel for calls, through the one Rasa client (channels/rasa_client.py) and its retry policy."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._rasa = RasaClient(url, timeout=timeout)
        self.url = self._rasa.url

    async def respond(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        return parse_rest_messages(await self._rasa.messages(sender, text, metadata))

    async def aclose(self) -> None:
        await self._rasa.aclose()
