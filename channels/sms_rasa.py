"""Forward a subscriber's text to Rasa's REST channel (shared by the SMS and web chat channels).

The channel, never the subscriber, sets `metadata.account_id`: the bot trusts it to find the account."""

from __future__ import annotations

from typing import Any

import httpx


class RasaUnavailable(RuntimeError):
    pass


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/webhooks/rest/webhook"
        # One pooled client per process: a new TCP connection per message would double the latency.
        self._client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=32))

    async def ask(self, sender: str, text: str, account_id: str, channel: str) -> list[dict[str, Any]]:
        """The bot's messages in order: dicts with `text` (and `buttons`); custom payloads are dropped."""
        body = {"sender": sender, "message": text, "metadata": {"account_id": account_id, "channel": channel}}
        try:
            response = await self._client.post(self.url, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"rasa: {exc}") from exc
        return [m for m in response.json() if isinstance(m, dict) and m.get("text")]

    async def aclose(self) -> None:
        await self._client.aclose()
