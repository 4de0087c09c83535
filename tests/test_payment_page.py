"""The payment page (GET /pay, payments/page.py), the hand-over to the provider and the local fake provider
(payments/fake_provider.py) confirming through the signed webhook, once: duebot's app on a real port, a real Redis."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from duebot.accounts.importer import import_csv
from duebot.accounts.models import Account, Payment
from duebot.accounts.store import AccountStore
from duebot.campaigns.followup import FollowThrough, FollowUpPolicy
from duebot.payments import http as payment_api
from duebot.payments import page as payment_page
from duebot.payments.fake_provider import FakeProvider
from duebot.payments.links import make_link
from duebot.settings import RedisAddress
from tests.channels.conftest import ServerThread
from tests.served import ACCOUNTS_CSV

SECRET = b"payment-page-test-secret"


@dataclass
class Rig:
    url: str
    store: AccountStore
    provider: FakeProvider

    def link(self, account_id: str, amount: str, hours: int = 72, now: float | None = None) -> str:
        return make_link(account_id, Decimal(amount), hours, now).url(f"{self.url}/pay", SECRET).split("?t=")[1]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_address: RedisAddress,
        redis_client: redis.Redis) -> Iterator[Rig]:
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUEBOT_PAYMENT_SECRET", SECRET.decode())
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    for cached in (payment_api._store, payment_api._inbox, payment_page._store):
        cached.cache_clear()
    from duebot.web import create_app

    store = AccountStore()
    import_csv(ACCOUNTS_CSV, store)
    server = ServerThread(create_app())
    monkeypatch.setenv("DUEBOT_PUBLIC_URL", server.url)
    with server, FakeProvider(key=SECRET, backoff=0.05) as provider:
        monkeypatch.setenv("DUEBOT_PAYMENT_PROVIDER_URL", provider.url)
        yield Rig(server.url, store, provider)
    for cached in (payment_api._store, payment_api._inbox, payment_page._store):
        cached.cache_clear()


def test_the_page_shows_the_amount_of_a_valid_link_and_a_form_to_pay(rig: Rig) -> None:
    page = httpx.get(f"{rig.url}/pay", params={"t": rig.link("A-1", "230.50")})
    assert page.status_code == 200 and "Amount to pay: 230.50 USD" in page.text
    assert '<form method="post" action="/pay">' in page.text and "<script" not in page.text
    assert "Jane" not in page.text and "4472" not in page.text  # the amount, nothing personal
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and f"form-action 'self' {rig.provider.url}" in csp


def test_a_bad_or_expired_link_is_refused_without_account_data(rig: Rig) -> None:
    good = rig.link("A-1", "230.50")
    tampered = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    for token in (tampered, "nonsense", "", "x" * 3000):
        page = httpx.get(f"{rig.url}/pay", params={"t": token})
        assert page.status_code in (400, 422) and "230.50" not in page.text and "USD" not in page.text
    assert httpx.get(f"{rig.url}/pay", params={"t": tampered}).status_code == 400
    old = rig.link("A-1", "230.50", hours=1, now=dt.datetime.now(dt.UTC).timestamp() - 7200)
    expired = httpx.get(f"{rig.url}/pay", params={"t": old})
    assert expired.status_code == 410 and "expired" in expired.text and "230.50" not in expired.text
    assert httpx.post(f"{rig.url}/pay", data={"t": old}, follow_redirects=False).status_code == 410
    for token in (tampered, "nonsense", ""):  # nothing reaches the provider without a valid link
        refused = httpx.post(f"{rig.url}/pay", data={"t": token}, follow_redirects=False)
        assert refused.status_code in (400, 422) and "location" not in refused.headers


def test_the_page_speaks_the_accounts_language(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_SERVED_LANGUAGES", "en,zh")
    with rig.store.session() as s:
        s.get(Account, "A-5").language = "zh"
    page = httpx.get(f"{rig.url}/pay", params={"t": rig.link("A-5", "210.00")})
    assert page.status_code == 200 and "应缴金额：210.00 CNY" in page.text and "立即缴费" in page.text


def test_without_a_provider_the_page_says_so_and_gives_the_callback_number(rig: Rig,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUEBOT_PAYMENT_PROVIDER_URL")
    token = rig.link("A-1", "230.50")
    page = httpx.get(f"{rig.url}/pay", params={"t": token})
    assert page.status_code == 200 and "not available" in page.text and "+1 800 555 0100" in page.text
    assert "<form" not in page.text
    posted = httpx.post(f"{rig.url}/pay", data={"t": token}, follow_redirects=False)
    assert posted.status_code == 200 and "not available" in posted.text and rig.provider.checkouts == {}


def test_the_fake_provider_pays_and_the_webhook_applies_it_once(rig: Rig, redis_client: redis.Redis) -> None:
    today = dt.date.today()
    rig.store.add_promise("A-1", Decimal("230.50"), today + dt.timedelta(days=6), "chat-9")
    follow = FollowThrough(rig.store, redis_client, None, policy=FollowUpPolicy())
    follow.tick(force=True)
    assert rig.store.obligations("A-1")[0].remind_state == "pending"
    token = rig.link("A-1", "230.50")
    handed = httpx.post(f"{rig.url}/pay", data={"t": token}, follow_redirects=False)
    assert handed.status_code == 303 and handed.headers["location"].startswith(f"{rig.provider.url}/checkout/")
    checkout = httpx.get(handed.headers["location"])
    assert checkout.status_code == 200 and "230.50 CNY" not in checkout.text and "230.50 USD" in checkout.text
    action = re.search(r"action='([^']+)'", checkout.text).group(1)
    paid = httpx.post(f"{rig.provider.url}{action}", follow_redirects=False)  # the subscriber presses Pay
    assert paid.status_code == 303 and paid.headers["location"] == f"{rig.url}/pay?t={token}"
    assert [d["status"] for d in rig.provider.deliveries] == [200]
    assert rig.provider.redeliver(next(iter(rig.provider.checkouts))) == 200  # the provider retries
    account = rig.store.get_account("A-1")
    assert (account.status, account.amount_due) == ("paid", Decimal("0.00"))
    with rig.store.session() as s:
        assert s.query(Payment).filter_by(account_id="A-1").count() == 1
    row = rig.store.obligations("A-1")[0]
    assert (row.status, row.remind_state) == ("kept", "cancelled")  # the pending reminder is stopped
    assert rig.store.promises("A-1")[0].status == "kept"


def test_the_fake_provider_retries_until_duebot_answers(rig: Rig) -> None:
    token = rig.link("A-2", "580.00")
    handed = httpx.post(f"{rig.url}/pay", data={"t": token}, follow_redirects=False)
    checkout = next(iter(rig.provider.checkouts.values()))
    assert handed.headers["location"].endswith(checkout.id)
    good_webhook, checkout.webhook_url = checkout.webhook_url, f"{rig.url}/nowhere"  # 404: a 4xx, not retried
    rig.provider.pay(checkout.id, Decimal("80.00"))
    assert [d["status"] for d in rig.provider.deliveries] == [404]
    from duebot.processes import free_port

    checkout.webhook_url = f"http://127.0.0.1:{free_port()}/payments/webhook"  # duebot down: retried
    rig.provider.retries = 2
    rig.provider.pay(checkout.id, Decimal("80.00"))
    assert [d["status"] for d in rig.provider.deliveries[1:]] == [0, 0, 0]
    checkout.webhook_url = good_webhook
    assert rig.provider.redeliver(checkout.id) == 200
    assert rig.store.get_account("A-2").amount_due == Decimal("500.00")  # a partial payment: 580 - 80
