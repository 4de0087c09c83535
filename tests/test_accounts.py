import datetime as dt
from decimal import Decimal

import pytest

from duebot.accounts.importer import derive_segment, import_csv
from duebot.accounts.store import AccountStore

FIXTURE = __import__("pathlib").Path(__file__).parent / "fixtures" / "accounts.csv"


@pytest.fixture
def store(tmp_path):
    return AccountStore(f"sqlite:///{tmp_path / 'accounts.sqlite3'}")


def test_import_keeps_good_rows_and_reports_bad_ones_by_line(store):
    report = import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    assert report.created == 5 and report.updated == 0
    assert [line for line, _ in report.errors] == [7, 8, 9, 10, 11]
    reasons = dict(report.errors)
    assert "missing phone" in reasons[7]
    assert "not a valid number" in reasons[8]
    assert "amount" in reasons[9]
    assert "due_date" in reasons[10]
    assert "timezone" in reasons[11]
    account = store.get_account("A-2")
    assert account.phone == "+12125550102"  # normalised to E.164
    assert account.amount_due == Decimal("580.00")


def test_reimport_is_idempotent(store):
    import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    again = import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    assert again.created == 0 and again.updated == 5


def test_segments_are_derived_by_documented_rules():
    today = dt.date(2026, 11, 24)
    assert derive_segment(Decimal("100"), dt.date(2024, 1, 1), today) == "legacy"
    assert derive_segment(Decimal("3500"), dt.date(2026, 10, 1), today) == "new_business"
    assert derive_segment(Decimal("90"), dt.date(2026, 10, 1), today) == "forgot"


def test_dispute_holds_and_releases_collection(store):
    import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    case = store.open_dispute("A-1", "unrecognised_charges", "168 charges", "c1")
    assert store.get_account("A-1").status == "disputed"
    assert store.has_open_dispute("A-1")
    store.resolve_dispute(case.case_number, "rejected")
    assert not store.has_open_dispute("A-1")
    assert store.get_account("A-1").status == "open"
    # the history says so (billing's relay turns it into `dispute_resolved`), without the subscriber's words
    [event] = [e for e in store.events("A-1") if e.kind == "dispute_resolved"]
    assert event.detail == {"case_number": case.case_number, "reason": "unrecognised_charges",
                            "resolution": "rejected"}


def test_payment_is_applied_once_per_reference(store):
    import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    assert store.record_payment("A-1", Decimal("30.50"), "pay-1")
    assert not store.record_payment("A-1", Decimal("30.50"), "pay-1")
    assert store.get_account("A-1").amount_due == Decimal("200.00")
    assert store.record_payment("A-1", Decimal("200.00"), "pay-2")
    assert store.get_account("A-1").status == "paid"


def test_an_applied_payment_is_in_the_accounts_history_once(store):
    import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    assert store.apply_payment("A-1", Decimal("30.50"), "pay-1")
    assert not store.apply_payment("A-1", Decimal("30.50"), "pay-1")  # a provider's retry
    payments = [e.detail for e in store.events("A-1") if e.kind == "payment"]
    assert payments == [{"amount": "30.50", "reference": "pay-1", "remaining": "200.00"}]


def test_opt_out_is_per_number_on_every_channel(store):
    store.set_opt_out("+14155550101", True, "sms", "STOP")
    assert store.is_opted_out("+14155550101")
    store.set_opt_out("+14155550101", False, "sms", "START")
    assert not store.is_opted_out("+14155550101")


def test_gate_sees_opt_out_and_dispute_from_the_store(store):
    from duebot.policies.gate import decide

    import_csv(FIXTURE, store, today=dt.date(2026, 11, 24))
    request = {"now": "2026-11-24T20:00:00Z",  # 12:00 in San Francisco
               "contact": {"channel": "sms", "purpose": "collection", "to": "+14155550101", "debt_id": "A-1"},
               "subscriber": store.gate_subscriber("A-1")}
    assert decide(request, "us").allowed
    store.open_dispute("A-1", "wrong_amount", "", None)
    request["subscriber"] = store.gate_subscriber("A-1")
    assert decide(request, "us").reasons == ("DISPUTE_OPEN",)
    store.set_opt_out("+14155550101", True, "voice", "conversation")
    request["subscriber"] = store.gate_subscriber("A-1")
    assert "OPTED_OUT" in decide(request, "us").reasons


def test_upsert_account_creates_and_updates_one_account(store):
    """Session.merge fires `load` without a query context: a brand-new account must still be stored, sealed."""
    from duebot.accounts.models import Account

    account = Account(id="N-1", name="王芳", phone="+8613910990000", amount_due=Decimal("10.00"), currency="CNY",
                      due_date=dt.date(2026, 11, 1), segment="forgot", pack="cn", language="zh")
    assert store.upsert_account(account) is True
    stored = store.get_account("N-1")
    assert (stored.name, stored.phone, stored.amount_due) == ("王芳", "+8613910990000", Decimal("10.00"))
    account.amount_due = Decimal("5.00")
    store.upsert_account(account)
    assert store.get_account("N-1").amount_due == Decimal("5.00")
