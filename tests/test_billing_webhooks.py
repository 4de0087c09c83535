"""Billing/CRM integration (issue 20): signed events out to a real HTTP receiver, signed updates in; the attacks.

The receiver checks signatures with its own HMAC code, never duebot's; Redis is a real redis-server; the account
store is SQLite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from duebot.accounts.importer import import_csv
from duebot.accounts.models import Account, Event
from duebot.accounts.store import AccountStore
from duebot.channels.billing.events import EVENT_TYPES, Policy
from duebot.channels.billing.relay import BillingRelay
from duebot.evidence.inbox import STREAM
from tests.served import ACCOUNTS_CSV

SECRET = b"billing-test-secret-" + b"k" * 20
PHONE_DIGITS = "4155550101"  # A-1's number: must never leave duebot


class Receiver:
    """A billing system on a real port: verifies every signature, records what it accepted, fails on request."""

    def __init__(self, secret: bytes = SECRET) -> None:
        self.secret = secret
        self.accepted: list[dict] = []  # bodies answered 2xx
        self.posts: list[dict] = []  # every POST: id, attempt header, signature valid
        self.fail_with: list[int] = []  # status codes to answer first, one per POST
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(outer.secret, raw, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("X-Duebot-Signature", ""))
                with outer.lock:
                    outer.posts.append({"id": self.headers.get("X-Duebot-Event-Id"), "valid": valid,
                                        "attempt": self.headers.get("X-Duebot-Delivery-Attempt"), "raw": raw})
                    status = 401 if not valid else (outer.fail_with.pop(0) if outer.fail_with else 200)
                    if status == 200:
                        outer.accepted.append(json.loads(raw))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/duebot-events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def ids(self) -> list[str]:
        return [body["id"] for body in self.accepted]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    accounts = AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}")
    import_csv(ACCOUNTS_CSV, accounts)
    return accounts


def _due(store: AccountStore, account_id: str, days_ago: int) -> None:
    with store.session() as s:
        s.get(Account, account_id).due_date = dt.date.today() - dt.timedelta(days=days_ago)


def _relay(store: AccountStore, redis_client, receiver: Receiver, sleeps: list[float] | None = None,
           **options: object) -> BillingRelay:
    values = {"max_attempts": 3, "backoff": 0.5, "settle": 0.0, "timeout": 5.0,
              "sleep": (sleeps if sleeps is not None else []).append, **options}
    return BillingRelay(store, redis_client, receiver.url, SECRET, policy=Policy(), **values)  # type: ignore[arg-type]


def _every_kind(store: AccountStore) -> None:
    """One account event of each kind billing hears of, as the bot, the payment webhook and the follow-through
    write them, with personal values in their details; and events billing must not hear of."""
    _due(store, "A-4", 45)  # past the policy's 30 days
    store.add_event("sms_sent", "A-1", "c1", {"to": "+14155550101"})
    store.add_event("payment", "A-1", "payment-ch_1", {"amount": "30.50", "reference": "ch_1", "remaining": "200.00"})
    store.add_event("promise", "A-1", "c1", {"needs_review": "False", "amount": "200.00", "date": "2031-01-10"})
    store.add_event("partial", "A-2", "c2", {"needs_review": "False", "part": "80.00", "rest": "500.00",
                                             "date": "2031-01-15"})
    store.add_event("promise_kept", "A-1", "c1", {"key": "promise:1", "status": "kept", "amount": "200.00",
                                                  "paid": "200.00", "due_date": "2031-01-10", "promise_id": 1})
    store.add_event("promise_broken", "A-4", "c4", {"key": "promise:2", "status": "broken", "amount": "300.00",
                                                    "paid": "0.00", "due_date": "2031-01-10", "promise_id": 2})
    store.add_event("plan", "A-3", "c3", {"needs_review": "True", "schedule": str(
        [{"due_date": "2031-02-01", "amount": "100.00"}, {"due_date": "2031-03-01", "amount": "100.50"}])})
    store.add_event("dispute", "A-1", "c1", {"case_number": "D-1A2B3C4D", "reason": "wrong_amount",
                                             "details": "my number 415 555 0101 was charged twice"})
    store.add_event("dispute_resolved", "A-1", None, {"case_number": "D-1A2B3C4D", "resolution": "upheld"})
    store.add_event("opt_out", "A-1", "c1", {"channel": "sms", "text": "stop texting 4155550101"})
    store.add_event("handoff", "A-1", "c1", {"reason": "requested", "verified": "True",
                                             "last_message": "I am Jane Doe, call me on 4155550101"})
    store.add_event("service_state", "A-1", "billing-r1", {"state": "active"})  # billing's own answer: no echo
    store.add_event("billing_update", "A-1", "billing-r1", {"request_id": "r1"})


# --- events out -------------------------------------------------------------------------------------------------

def test_each_kind_arrives_once_signed_and_without_personal_data(store, redis_client, receiver):
    _every_kind(store)
    relay = _relay(store, redis_client, receiver)
    assert relay.run_once() == 13  # 10 kinds (a partial is a promise too) and 3 service requests
    assert relay.run_once() == 0  # nothing twice
    assert all(post["valid"] for post in receiver.posts) and len(receiver.posts) == 13
    assert sorted({body["type"] for body in receiver.accepted}) == sorted(EVENT_TYPES)
    assert len(set(receiver.ids())) == len(receiver.ids()) == 13
    by_type = {body["type"]: body for body in receiver.accepted}
    assert by_type["payment_received"]["data"] == {"amount": "30.50", "reference": "ch_1", "remaining": "200.00",
                                                   "currency": "USD"}
    assert by_type["service_restore_requested"]["data"]["amount_paid"] in ("30.50", "200.00")
    assert [b["data"]["trigger"] for b in receiver.accepted if b["type"] == "service_restore_requested"] == [
        "payment_received", "promise_kept"]
    assert by_type["service_suspend_recommended"]["account_id"] == "A-4"
    assert by_type["service_suspend_recommended"]["data"]["days_overdue"] >= 45
    promises = [body["data"] for body in receiver.accepted if body["type"] == "promise_made"]
    assert promises == [{"amount": "200.00", "kind": "full", "due_date": "2031-01-10", "needs_review": False,
                         "currency": "USD"},
                        {"amount": "500.00", "paid_now": "80.00", "kind": "partial_rest", "due_date": "2031-01-15",
                         "needs_review": False, "currency": "USD"}]
    assert by_type["plan_created"]["data"]["total"] == "200.50"
    assert by_type["dispute_opened"]["data"] == {"case_number": "D-1A2B3C4D", "reason": "wrong_amount",
                                                 "currency": "USD"}
    for body in receiver.accepted:
        assert set(body) == {"id", "type", "version", "occurred_at", "account_id", "data"}
        assert body["version"] == 1 and body["occurred_at"].endswith("Z")
        dt.datetime.fromisoformat(body["occurred_at"])
    everything = b"".join(post["raw"] for post in receiver.posts)
    for personal in (PHONE_DIGITS.encode(), b"Jane", b"charged twice", b"stop texting", b"555"):
        assert personal not in everything


def test_a_broken_promise_not_far_enough_overdue_recommends_nothing(store, redis_client, receiver):
    _due(store, "A-4", 10)
    store.add_event("promise_broken", "A-4", "c4", {"amount": "300.00", "status": "broken"})
    _relay(store, redis_client, receiver).run_once()
    assert [body["type"] for body in receiver.accepted] == ["promise_broken"]


def test_a_receiver_that_fails_twice_gets_it_on_the_third_try(store, redis_client, receiver):
    store.add_event("opt_out", "A-1", "c1", {"channel": "sms"})
    receiver.fail_with = [500, 503]
    sleeps: list[float] = []
    relay = _relay(store, redis_client, receiver, sleeps)
    assert relay.run_once() == 1
    assert [post["attempt"] for post in receiver.posts] == ["1", "2", "3"]
    assert len({post["id"] for post in receiver.posts}) == 1  # the same event id every time
    assert sleeps == [0.5, 1.0]  # exponential back-off
    assert relay.dead_letters() == [] and len(receiver.accepted) == 1


def test_a_receiver_that_always_fails_gets_a_dead_letter_then_retry_sends_it(store, redis_client, receiver):
    store.add_event("handoff", "A-1", "c1", {"reason": "requested"})
    store.add_event("opt_out", "A-1", "c1", {"channel": "sms"})
    receiver.fail_with = [500, 500, 500]  # every try of the first event
    relay = _relay(store, redis_client, receiver)
    assert relay.run_once() == 1  # the second event is not held up for good
    letters = relay.dead_letters()
    assert [(entry["type"], entry["attempts"], entry["error"]) for entry in letters] == [("handoff", 3, "HTTP 500")]
    assert [body["type"] for body in receiver.accepted] == ["opt_out"]
    assert relay.run_once() == 0  # the cursor moved past it: only `retry` sends it again
    sent, failing = relay.retry()
    assert (sent, failing) == ([letters[0]["id"]], [])
    assert relay.dead_letters() == [] and receiver.ids().count(letters[0]["id"]) == 1
    assert relay.retry() == ([], [])


def test_a_refusal_is_not_repeated(store, redis_client, receiver):
    store.add_event("opt_out", "A-1", "c1", {"channel": "sms"})
    receiver.fail_with = [400]
    relay = _relay(store, redis_client, receiver)
    relay.run_once()
    assert len(receiver.posts) == 1 and relay.dead_letters()[0]["error"] == "HTTP 400"


def test_the_cli_lists_dead_letters_and_retries_them(tmp_path, store, redis_client, redis_address, receiver,
                                                     monkeypatch):
    from duebot.cli import app

    store.add_event("handoff", "A-1", "c1", {"reason": "requested"})
    receiver.fail_with = [502, 502, 502]
    _relay(store, redis_client, receiver).run_once()
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path))  # the store above is $DUEBOT_DATA_DIR/duebot.sqlite3
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    monkeypatch.setenv("DUEBOT_BILLING_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("DUEBOT_BILLING_WEBHOOK_SECRET", SECRET.decode())
    runner = CliRunner()
    listed = runner.invoke(app, ["billing", "dead-letters"])
    assert listed.exit_code == 0 and "handoff" in listed.output and "1 waiting; 1 dead-lettered in all" in listed.output
    retried = runner.invoke(app, ["billing", "retry"])
    assert retried.exit_code == 0, retried.output
    assert "1 sent, 0 still failing" in retried.output
    assert [body["type"] for body in receiver.accepted] == ["handoff"]
    assert "0 waiting" in runner.invoke(app, ["billing", "dead-letters"]).output


def test_the_cli_says_when_billing_is_not_configured(monkeypatch):
    from duebot.cli import app

    monkeypatch.delenv("DUEBOT_BILLING_WEBHOOK_URL", raising=False)
    result = CliRunner().invoke(app, ["billing", "dead-letters"])
    assert result.exit_code == 2 and "DUEBOT_BILLING_WEBHOOK_URL" in result.output


class Crash(BaseException):
    """The process dies (not an error the relay handles)."""


def test_a_relay_restarted_mid_stream_sends_nothing_twice_that_was_acknowledged(store, redis_client, receiver):
    for n in range(3):
        store.add_event("payment", "A-1", f"payment-ch_{n}", {"amount": "10.00", "reference": f"ch_{n}"})
    first = _relay(store, redis_client, receiver)
    real_post, posted = first.post, []

    def dies_on_the_fourth(event_id: str, event_type: str, body: bytes, attempt: int) -> tuple[bool, bool, str]:
        if len(posted) == 3:  # the second payment's restore request: its payment_received was acknowledged
            raise Crash
        posted.append(event_id)
        return real_post(event_id, event_type, body, attempt)

    first.post = dies_on_the_fourth  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.run_once()
    assert len(receiver.accepted) == 3 and first.cursor == store.events("A-1")[0].id  # the first row only

    again = _relay(store, redis_client, receiver)  # a new process, the same Redis
    assert again.run_once() == 4  # the acknowledged one counts as delivered without a POST
    assert len(receiver.posts) == 6  # each of the 6 events POSTed exactly once
    assert sorted(receiver.ids()) == sorted(set(receiver.ids())) and len(receiver.ids()) == 6


def test_a_crash_between_the_2xx_and_its_record_resends_the_same_id_and_body(store, redis_client, receiver):
    """The honest limit: at-least-once. The receiver sees the same id and the same bytes, and dedupes."""
    store.add_event("opt_out", "A-1", "c1", {"channel": "sms"})
    first = _relay(store, redis_client, receiver)
    first._mark_sent = lambda event_id: (_ for _ in ()).throw(Crash)  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.run_once()
    _relay(store, redis_client, receiver).run_once()
    assert len(receiver.posts) == 2 and receiver.posts[0]["raw"] == receiver.posts[1]["raw"]
    assert receiver.posts[0]["id"] == receiver.posts[1]["id"]


def test_the_relay_does_not_run_without_a_url(monkeypatch, redis_client, store):
    from duebot.settings import load_settings

    monkeypatch.delenv("DUEBOT_BILLING_WEBHOOK_URL", raising=False)
    assert BillingRelay.from_settings(load_settings(), redis_client, store) is None


# --- updates in -------------------------------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path, monkeypatch, redis_address, redis_client) -> Iterator[tuple[TestClient, AccountStore]]:
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUEBOT_BILLING_WEBHOOK_SECRET", SECRET.decode())
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    monkeypatch.setenv("DUEBOT_MAX_BODY_BYTES", "4096")
    from duebot.channels.billing import http as billing_api
    from duebot.web import create_app

    for cached in (billing_api._store, billing_api._inbox, billing_api._secret):
        cached.cache_clear()
    accounts = AccountStore()
    import_csv(ACCOUNTS_CSV, accounts)
    with TestClient(create_app()) as client:
        yield client, accounts
    for cached in (billing_api._store, billing_api._inbox, billing_api._secret):
        cached.cache_clear()


def _update(client: TestClient, account_id: str, body: dict | bytes, *, key: bytes = SECRET,
            request_id: str | None = None, signature: str | bytes | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if request_id is None:
        request_id = body.get("request_id", "") if isinstance(body, dict) else ""
    headers = {"Content-Type": "application/json", "X-Billing-Request-Id": request_id,
               "X-Duebot-Signature": signature if signature is not None else
               "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()}
    return client.post(f"/billing/accounts/{account_id}", content=raw, headers=headers)


def _evidence(redis_client) -> list[dict]:
    return [json.loads(fields[b"body"]) for _, fields in redis_client.xrange(STREAM)]


def test_a_valid_update_changes_the_balance_and_the_service_state_and_is_evidence(api, redis_client):
    client, accounts = api
    body = {"request_id": "bill-1", "account_id": "A-1", "amount_due": "99.90", "service_state": "suspended",
            "restore_amount": "50"}
    answer = _update(client, "A-1", body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"applied": True, "account_id": "A-1", "amount_due": "99.90",
                             "previous_amount_due": "230.50", "request_id": "bill-1", "service_state": "suspended",
                             "restore_amount": "50.00"}
    assert accounts.get_account("A-1").amount_due == Decimal("99.90")
    from duebot.channels.billing.http import service_state

    assert service_state(accounts, "A-1") == {"state": "suspended", "restore_amount": "50.00", "request_id": "bill-1"}
    records = _evidence(redis_client)
    assert len(records) == 1 and records[0]["type"] == "billing_update" and records[0]["amount_due"] == "99.90"


def test_a_zero_balance_closes_collection(api):
    client, accounts = api
    assert _update(client, "A-2", {"request_id": "z-1", "account_id": "A-2", "amount_due": 0}).status_code == 200
    account = accounts.get_account("A-2")
    assert account.amount_due == Decimal("0.00") and account.status == "paid"


def test_a_replayed_request_id_is_applied_once(api, redis_client):
    client, accounts = api
    body = {"request_id": "bill-2", "account_id": "A-1", "amount_due": "100.00"}
    assert _update(client, "A-1", body).json()["applied"] is True
    _update(client, "A-1", {"request_id": "bill-3", "account_id": "A-1", "amount_due": "80.00"})
    replay = _update(client, "A-1", body)  # an old, validly signed request sent again
    assert replay.status_code == 200 and replay.json()["applied"] is False
    assert accounts.get_account("A-1").amount_due == Decimal("80.00")  # the later update stands
    assert [r["request_id"] for r in _evidence(redis_client)] == ["bill-2", "bill-3"]
    with accounts.session() as s:
        from sqlalchemy import func, select

        assert s.scalar(select(func.count()).where(Event.kind == "billing_update")) == 2


def test_a_request_id_reused_for_another_body_is_a_conflict(api):
    client, accounts = api
    _update(client, "A-1", {"request_id": "bill-4", "account_id": "A-1", "amount_due": "100.00"})
    other = _update(client, "A-1", {"request_id": "bill-4", "account_id": "A-1", "amount_due": "1.00"})
    assert other.status_code == 409 and accounts.get_account("A-1").amount_due == Decimal("100.00")


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "0" * 64, "sha256=ÿ".encode("latin-1"), "sha1=abc"])
def test_a_bad_or_missing_signature_is_refused(api, redis_client, signature):
    client, accounts = api
    body = {"request_id": "evil-1", "account_id": "A-1", "amount_due": "0"}
    assert _update(client, "A-1", body, signature=signature).status_code == 403
    assert _update(client, "A-1", body, key=b"another-key").status_code == 403
    assert accounts.get_account("A-1").amount_due == Decimal("230.50") and _evidence(redis_client) == []


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "-1.00", "1.005", "1e3", "1E+2", "0.000",
                                    "100000000.00", True, None, [], "12,50"])
def test_an_amount_that_is_not_money_is_refused_naming_the_field(api, amount):
    client, accounts = api
    body = {"request_id": "amt-1", "account_id": "A-1", "amount_due": amount}
    answer = _update(client, "A-1", body)
    assert answer.status_code == 422 and "amount_due" in answer.json()["detail"], answer.text
    assert accounts.get_account("A-1").amount_due == Decimal("230.50")


@pytest.mark.parametrize("raw", [b'{"request_id":"amt-2","account_id":"A-1","amount_due":NaN}',
                                 b'{"request_id":"amt-2","account_id":"A-1","amount_due":-Infinity}',
                                 b'{"request_id":"amt-2","account_id":"A-1","amount_due":-0.5}',
                                 b'{"request_id":"amt-2","account_id":"A-1","amount_due":1.999}'])
def test_json_numbers_that_are_not_money_are_refused(api, raw):
    client, _ = api
    answer = _update(client, "A-1", raw, request_id="amt-2")
    assert answer.status_code == 422 and "amount_due" in answer.json()["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"request_id": "f-1", "account_id": "A-1", "service_state": "cut_off"}, "service_state"),
    ({"request_id": "f-1", "account_id": "A-1", "service_state": "active", "restore_amount": "5"}, "restore_amount"),
    ({"request_id": "f-1", "account_id": "A-1", "service_state": "suspended", "restore_amount": "-5"},
     "restore_amount"),
    ({"request_id": "f-1", "account_id": "A-1"}, "amount_due or service_state"),
    ({"request_id": "f-1", "account_id": "A-1", "amount_due": "1", "admin": True}, "admin"),
    ({"request_id": "f-1", "account_id": "A-2", "amount_due": "1"}, "account_id"),  # signed for A-2, sent for A-1
    ({"request_id": "f-2", "account_id": "A-1", "amount_due": "1"}, "request_id"),  # header says f-1
])
def test_a_bad_field_is_named(api, body, field):
    client, _ = api
    answer = _update(client, "A-1", body, request_id="f-1")
    assert answer.status_code == 422 and field in answer.json()["detail"], answer.text


def test_a_bad_request_id_header_is_refused(api):
    client, _ = api
    body = {"request_id": "x" * 65, "account_id": "A-1", "amount_due": "1"}
    assert _update(client, "A-1", body).status_code == 422


def test_an_unknown_account_is_404(api, redis_client):
    client, _ = api
    answer = _update(client, "NOPE", {"request_id": "u-1", "account_id": "NOPE", "amount_due": "1"})
    assert answer.status_code == 404 and _evidence(redis_client) == []


def test_an_oversized_body_is_refused_before_it_is_read(api):
    client, _ = api
    body = {"request_id": "big-1", "account_id": "A-1", "amount_due": "1", "pad": "x" * 5000}
    assert _update(client, "A-1", body).status_code == 413


def test_billing_answers_never_flow_back_to_billing(api, redis_client, receiver):
    client, accounts = api
    _update(client, "A-1", {"request_id": "echo-1", "account_id": "A-1", "service_state": "restore_pending",
                            "restore_amount": "20.00"})
    relay = _relay(accounts, redis_client, receiver)
    assert relay.run_once() == 0 and receiver.posts == []
