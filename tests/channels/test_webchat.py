"""The chat endpoints without a browser: link checks, headers, token enforcement, the account comes from the token."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from duebot.channels.chat import webchat
from duebot.web import create_app


class RecordingRasa:
    """Stands in for RasaClient to show what duebot forwards (the browser tests use the real Rasa)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    async def ask(self, sender: str, text: str, account_id: str, channel: str) -> list[dict[str, Any]]:
        self.calls.append((sender, text, account_id, channel))
        return [{"text": "Hello!", "buttons": [{"title": "Yes", "payload": "/affirm"}]}]


def _client() -> tuple[TestClient, RecordingRasa]:
    app = create_app()
    app.include_router(webchat.router)
    rasa = RecordingRasa()
    app.dependency_overrides[webchat.get_chat] = lambda: webchat.ChatChannel(rasa, None)  # type: ignore[arg-type]
    return TestClient(app), rasa


def test_the_page_needs_a_valid_link_and_is_locked_down() -> None:
    client, _ = _client()
    page = client.get(f"/chat?t={webchat.make_token('A-1')}")
    assert page.status_code == 200 and 'role="log"' in page.text and 'aria-live="polite"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert "http" not in page.text.split("<body>")[1]  # no external CDN: everything is served by duebot
    assert client.get("/chat?t=nonsense").status_code == 403
    assert client.get(f"/chat?t={webchat.make_token('A-1', ttl_hours=-1)}").status_code == 403
    assert client.get("/chat/static/chat.js").status_code == 200
    assert client.get("/chat/static/index.html").status_code == 404
    assert client.get("/chat/static/..%2Fwebchat.py").status_code == 404


def test_messages_go_to_the_tokens_account_only() -> None:
    client, rasa = _client()
    token = webchat.make_token("A-3")
    reply = client.post("/chat/api/message", json={"text": "hi", "account_id": "A-1"},
                        headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200
    assert reply.json() == {"messages": [{"text": "Hello!", "buttons": [{"title": "Yes", "payload": "/affirm"}]}]}
    assert rasa.calls == [("chat:A-3", "hi", "A-3", "chat")]
    assert client.post("/chat/api/message", json={"text": "hi"}).status_code == 403
    assert client.post("/chat/api/message", json={"text": "hi"},
                       headers={"Authorization": "Bearer x.y"}).status_code == 403
    assert client.post("/chat/api/message", json={"text": ""},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 422
    assert len(rasa.calls) == 1
