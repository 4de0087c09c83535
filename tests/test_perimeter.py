"""The perimeter of a running `duebot serve`, attacked as issue 18 found it open: every internal service asks its
caller to authenticate, and the stack generates its own secrets and refuses published ones."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys

import httpx
import pytest
import redis

from duebot.settings import PUBLISHED_SECRETS, child_environment
from tests.served import Served, served_fixture

served = served_fixture(test_redis=False)  # serve's own embedded Redis, with the password it generates
GENERATED = ("rasa_token", "actions_token", "redis_password")


def _state_url(served: Served, service: str) -> str:
    return served.state()[service]["url"]


def test_serve_generates_its_own_secrets_private_to_the_data_dir(served: Served) -> None:
    secrets_dir = served.data_dir / "secrets"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    for name in GENERATED:
        path = secrets_dir / name
        value = path.read_text().strip()
        assert path.stat().st_mode & 0o777 == 0o600 and len(value) >= 32
        assert value not in PUBLISHED_SECRETS


def test_rasa_s_http_api_answers_only_with_the_token(served: Served) -> None:
    for method, path in (("GET", "/status"), ("GET", "/conversations/probe/tracker"), ("PUT", "/model"),
                         ("POST", "/conversations/probe/tracker/events")):
        anonymous = httpx.request(method, f"{served.rasa}{path}", json={}, timeout=10)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        wrong = httpx.request(method, f"{served.rasa}{path}", params={"token": "guess"}, json={}, timeout=10)
        assert wrong.status_code == 401, (method, path)
    assert served.rasa_api("GET", "/status").status_code == 200


def test_the_action_server_refuses_a_hand_made_tracker(served: Served) -> None:
    """The attack: ask the action server directly for an account's amount with `verified` set by hand."""
    actions = _state_url(served, "actions")
    call = {"next_action": "action_ask_amount", "sender_id": "attacker",
            "tracker": {"sender_id": "attacker", "slots": {"verified": True, "account_id": "A-1"},
                        "latest_message": {"text": "how much", "intent": {"name": "ask_amount"}}, "events": []},
            "domain": {}}
    for params in ({}, {"token": "guess"}):
        refused = httpx.post(f"{actions}/webhook", params=params, json=call, timeout=10)
        assert refused.status_code == 401 and "230.50" not in refused.text and "Jane" not in refused.text
    assert httpx.get(f"{actions}/health", timeout=10).status_code == 200  # the supervisor's probe stays open


def test_an_account_named_without_the_channel_s_signature_is_told_nothing(served: Served) -> None:
    """The attack: post to Rasa's REST webhook naming any account in the metadata, then pass the ID check."""
    replies = []
    for text in ("hello", "4472", "how much do I owe?"):
        body = {"sender": "forged-1", "message": text, "metadata": {"account_id": "A-1", "channel": "chat"}}
        answer = httpx.post(f"{served.rasa}/webhooks/rest/webhook", json=body, timeout=30)
        replies += [m.get("text", "") for m in answer.json()]
    said = " ".join(replies)
    assert "230.50" not in said and "Jane" not in said and "identity is confirmed" not in said, said
    signed = served.say("signed-1", "hello", {"account_id": "A-1", "channel": "chat"})  # as a channel sends it
    assert "last four digits" in " ".join(signed)


def test_the_embedded_redis_asks_for_its_password(served: Served) -> None:
    address = _state_url(served, "redis").removeprefix("redis://").split("/")[0]
    host, port = address.rsplit(":", 1)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=int(port)).ping()
    password = (served.data_dir / "secrets" / "redis_password").read_text().strip()
    assert redis.Redis(host=host, port=int(port), password=password).ping()


def test_links_signed_with_the_old_published_keys_are_refused(served: Served) -> None:
    web = _state_url(served, "web")
    payload = json.dumps({"a": "A-1", "e": 4_000_000_000, "p": "chat"}, separators=(",", ":")).encode()
    import base64

    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(b"duebot-development-chat-secret", f"chat.{body}".encode(),
                                            hashlib.sha256).digest()).rstrip(b"=").decode()
    assert httpx.get(f"{web}/chat", params={"t": f"{body}.{mac}"}, timeout=10).status_code == 403
    confirmation = json.dumps({"reference": "forged", "token": "x.y", "amount": "230.50"}).encode()
    forged = hmac.new(b"duebot-development-payment-secret", confirmation, hashlib.sha256).hexdigest()
    refused = httpx.post(f"{web}/payments/webhook", content=confirmation, timeout=10,
                         headers={"X-Duebot-Signature": forged, "Content-Type": "application/json"})
    assert refused.status_code == 403


@pytest.mark.parametrize("variable", ["DUEBOT_PAYMENT_SECRET", "DUEBOT_CHAT_SECRET", "DUEBOT_RASA_TOKEN"])
def test_serve_refuses_to_start_with_a_secret_published_in_the_repository(variable: str, tmp_path) -> None:
    published = sorted(PUBLISHED_SECRETS)[0]
    started = subprocess.run([sys.executable, "-m", "duebot.cli", "serve"], capture_output=True, text=True,
                             timeout=60, env=child_environment({variable: published,
                                                                "DUEBOT_DATA_DIR": str(tmp_path)}))
    assert started.returncode == 2
    assert f"{variable}: this value is published" in " ".join((started.stdout + started.stderr).split())
    assert not (tmp_path / "run" / "serve.json").exists()  # nothing was started
