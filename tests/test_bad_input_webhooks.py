"""Issue 18: webhooks refuse bad input with a 4xx that says why, never a 500, and change nothing. Each case here is a
500 the fuzz (evaluation/bench_fuzz.py) found, or an input the issue names (NaN, Infinity, 1E+1000000 amounts)."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from duebot.accounts.importer import import_csv
from duebot.evidence.inbox import STREAM
from tests.served import ACCOUNTS_CSV

PAYMENT_SECRET = b"bad-input-payment-secret"
CHAT_SECRET = "bad-input-chat-secret-0123456789"
TWILIO_TOKEN = "bad-input-twilio-auth-token"


@pytest.fixture
def app(tmp_path, monkeypatch, redis_address, redis_client):
    from duebot.accounts.store import AccountStore
    from duebot.channels.chat import webchat
    from duebot.channels.sms import webhook
    from duebot.payments import http as payment_api
    from duebot.policies import http as gate_api
    from duebot.web import create_app

    for name, value in {"DUEBOT_DATA_DIR": str(tmp_path), "REDIS_URL": redis_address.url,
                        "DUEBOT_PAYMENT_SECRET": PAYMENT_SECRET.decode(), "DUEBOT_CHAT_SECRET": CHAT_SECRET,
                        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "DUEBOT_PUBLIC_URL": "http://testserver"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(gate_api, "_sink", gate_api._sink)  # create_app wires it to this test's Redis: put it back
    caches = (payment_api._store, payment_api._inbox, webhook.get_channel, webchat.get_chat)
    for cache in caches:
        cache.cache_clear()
    assert not import_csv(ACCOUNTS_CSV, AccountStore()).errors[:0]
    application = create_app()
    yield application
    for cache in caches:
        cache.cache_clear()


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


# --- payment webhook ---------------------------------------------------------------------------------------------

def _token(account_id: str = "A-1") -> str:
    from duebot.payments.links import make_link

    return make_link(account_id, Decimal("230.50"), 72).url("https://p/x", PAYMENT_SECRET).split("?t=")[1]


def _pay(client, raw: bytes, signature: str | bytes | None = None):
    signature = hmac.new(PAYMENT_SECRET, raw, hashlib.sha256).hexdigest() if signature is None else signature
    return client.post("/payments/webhook", content=raw,
                       headers={"X-Duebot-Signature": signature, "Content-Type": "application/json"})


def _unchanged(client, redis_client) -> None:
    from duebot.accounts.store import AccountStore

    assert AccountStore().get_account("A-1").amount_due == Decimal("230.50")
    assert redis_client.xlen(STREAM) == 0


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1E+1000000", "1e400", '"NaN"', '"Infinity"',
                                    '"1E+1000000"', '"-5"', "0", '"0.001"', "100000000", "true", "[1]", "{}", "null",
                                    '"1e2"', "1" + "0" * 5000])
def test_a_signed_confirmation_with_a_bad_amount_is_422(client, redis_client, amount):
    raw = f'{{"reference": "ch_bad", "token": "{_token()}", "amount": {amount}}}'.encode()
    response = _pay(client, raw)
    assert response.status_code == 422, response.text
    assert "amount" in response.json()["detail"] or "JSON" in response.json()["detail"]
    _unchanged(client, redis_client)


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"1", b"null", b"[" * 5000, b"{" * 5000, b"\xff\xfe", b"",
                                 b'{"reference": "ch_1", "amount": "1.00"}'])
def test_a_signed_body_that_is_not_a_confirmation_is_422(client, redis_client, raw):
    assert _pay(client, raw).status_code == 422
    _unchanged(client, redis_client)


@pytest.mark.parametrize("reference", ["R" * 65, "a b", "x\u0000y", "😀", "", None, [], {"a": 1}])
def test_a_reference_that_could_not_name_an_evidence_record_is_422(client, redis_client, reference):
    raw = json.dumps({"reference": reference, "token": _token(), "amount": "1.00"}).encode()
    response = _pay(client, raw)
    assert response.status_code == 422 and "reference" in response.json()["detail"]
    _unchanged(client, redis_client)


def test_a_token_or_signature_that_is_not_ascii_is_refused_not_a_500(client, redis_client):
    raw = json.dumps({"reference": "ch_1", "token": _token()[:-2] + "é", "amount": "1.00"}).encode()
    assert _pay(client, raw).status_code == 422
    assert _pay(client, raw, signature="é".encode("latin-1") * 64).status_code == 403
    _unchanged(client, redis_client)


def test_a_signed_link_of_an_account_that_is_gone_is_404(client, redis_client):
    """The fuzz's find: record_payment wrote the payment row first, and the foreign key failed (a 500)."""
    raw = json.dumps({"reference": "ch_gone", "token": _token("removed-since"), "amount": "1.00"}).encode()
    assert _pay(client, raw).status_code == 404
    _unchanged(client, redis_client)


def test_a_good_confirmation_still_applies(client, redis_client):
    raw = json.dumps({"reference": "ch_ok", "token": _token(), "amount": 30.5}).encode()
    response = _pay(client, raw)
    assert response.status_code == 200 and response.json()["remaining"] == "200.00"
    assert redis_client.xlen(STREAM) == 1


# --- chat --------------------------------------------------------------------------------------------------------

@pytest.fixture
def chat(app):
    from duebot.channels.chat.webchat import ChatChannel, get_chat
    from duebot.channels.rasa_client import RasaClient

    # Rasa is never reached: every request here is refused before (nothing listens on port 9)
    app.dependency_overrides[get_chat] = lambda: ChatChannel(rasa=RasaClient("http://127.0.0.1:9"), redis=None)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _chat_token(account_id: str = "A-1") -> str:
    from duebot.channels.chat.webchat import make_token

    return make_token(account_id, key=CHAT_SECRET.encode())


@pytest.mark.parametrize("body", [b'{"text": NaN}', b'{"text": -Infinity}', b'{"text": 1E+1000000}',
                                  b'{"text": [NaN]}', b'{"text": 5}'])
def test_a_chat_body_with_a_number_json_has_not_is_422_not_500(chat, body):
    """The fuzz's find: FastAPI's 422 echoes the input, and `nan` made that answer unencodable."""
    response = chat.post("/chat/api/message", content=body, headers={
        "Authorization": f"Bearer {_chat_token()}", "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "text"]


def test_a_chat_token_whose_mac_is_not_ascii_is_refused_not_a_500(chat):
    """The fuzz's find: hmac.compare_digest raises TypeError on a non-ASCII str."""
    forged = _chat_token()[:-2] + "é\xff"
    assert chat.get("/chat", params={"t": forged}).status_code == 403
    response = chat.post("/chat/api/message", json={"text": "hi"},
                         headers={"Authorization": ("Bearer " + forged).encode("latin-1")})
    assert response.status_code == 403


# --- Twilio SMS --------------------------------------------------------------------------------------------------

def test_a_signed_sms_webhook_with_a_file_part_is_refused_not_a_500(client):
    """The fuzz's find: the signature check concatenated an UploadFile (TypeError). Twilio posts no files."""
    from duebot.channels.twilio_signature import SIGNATURE_HEADER, sign

    params = {"MessageSid": "SM" + "1" * 32, "From": "+14155550101", "To": "+12125550000", "Body": "hi"}
    signature = sign("http://testserver/twilio/sms", params, TWILIO_TOKEN)
    response = client.post("/twilio/sms", data=params, files={"MediaUrl0": ("x.bin", b"\x00\x01")},
                           headers={SIGNATURE_HEADER: signature})
    assert response.status_code == 403
    plain = client.post("/twilio/sms", data={**params, "Body": "HELP"}, headers={
        SIGNATURE_HEADER: sign("http://testserver/twilio/sms", {**params, "Body": "HELP"}, TWILIO_TOKEN)})
    assert plain.status_code == 200 and "<Message>" in plain.text  # the same request as a form is served
