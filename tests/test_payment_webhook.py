"""The payment provider's signed confirmation closes collection once, and is evidence."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from fastapi.testclient import TestClient

from duebot.accounts.importer import import_csv
from duebot.evidence.inbox import STREAM
from tests.served import ACCOUNTS_CSV

SECRET = b"webhook-test-secret"


@pytest.fixture
def client(tmp_path, monkeypatch, redis_address, redis_client):
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUEBOT_PAYMENT_SECRET", SECRET.decode())
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    from duebot.accounts.store import AccountStore
    from duebot.payments import http as payment_api
    from duebot.web import create_app

    payment_api._store.cache_clear()
    payment_api._inbox.cache_clear()
    import_csv(ACCOUNTS_CSV, AccountStore())
    with TestClient(create_app()) as test_client:
        yield test_client
    payment_api._store.cache_clear()
    payment_api._inbox.cache_clear()


def _post(client, body: dict, key: bytes = SECRET):
    raw = json.dumps(body).encode()
    signature = hmac.new(key, raw, hashlib.sha256).hexdigest()  # independent of duebot's signing code
    return client.post("/payments/webhook", content=raw, headers={"X-Duebot-Signature": signature,
                                                                   "Content-Type": "application/json"})


def _token() -> str:
    from duebot.payments.links import make_link

    return make_link("A-1", __import__("decimal").Decimal("230.50"), 72).url("https://p/x", SECRET).split("?t=")[1]


def test_confirmation_applies_once_and_closes_collection(client, redis_client):
    body = {"reference": "ch_1", "token": _token(), "amount": "230.50"}
    first = _post(client, body)
    assert first.status_code == 200 and first.json() == {"applied": True, "account_status": "paid",
                                                          "remaining": "0.00"}
    again = _post(client, body)  # the provider retries
    assert again.json()["applied"] is False
    entries = redis_client.xrange(STREAM)
    assert len(entries) == 1 and json.loads(entries[0][1][b"body"])["type"] == "payment"


def test_bad_or_missing_signature_is_refused(client, redis_client):
    body = {"reference": "ch_2", "token": _token(), "amount": "10"}
    assert _post(client, body, key=b"wrong").status_code == 403
    assert client.post("/payments/webhook", json=body).status_code == 403
    assert redis_client.xlen(STREAM) == 0


def test_forged_token_is_refused_even_when_the_body_is_signed(client):
    token = _token()
    payload, mac = token.rsplit(".", 1)
    forged = payload + "." + ("0" if mac[0] != "0" else "1") + mac[1:]
    assert _post(client, {"reference": "ch_3", "token": forged, "amount": "1"}).status_code == 422


def test_a_payment_confirmed_after_its_link_expired_still_counts(client):
    from decimal import Decimal

    from duebot.payments.links import make_link

    expired = make_link("A-1", Decimal("230.50"), 72, now=1_000_000).url("https://p/x", SECRET).split("?t=")[1]
    paid = _post(client, {"reference": "ch_late", "token": expired, "amount": "230.50"})
    assert paid.status_code == 200 and paid.json()["applied"] is True and paid.json()["account_status"] == "paid"


def test_the_repository_s_old_development_key_is_refused_and_never_signs(monkeypatch, tmp_path):
    import importlib

    from duebot.settings import SettingsError, load_settings

    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUEBOT_PAYMENT_SECRET", "duebot-development-payment-secret")
    with pytest.raises(SettingsError, match="DUEBOT_PAYMENT_SECRET: this value is published"):
        load_settings()
    monkeypatch.delenv("DUEBOT_PAYMENT_SECRET")
    links = importlib.import_module("duebot.payments.links")
    generated = links.secret()
    assert generated not in (b"", b"duebot-development-payment-secret") and len(generated) >= 32
    assert links.secret() == generated  # generated once for the data dir, then read back
    key_file = tmp_path / "secrets" / "payment"
    assert key_file.read_bytes() == generated and key_file.stat().st_mode & 0o777 == 0o600
    forged = hmac.new(b"duebot-development-payment-secret", b"{}", hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(links.sign(b"{}"), forged)
