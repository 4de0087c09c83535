"""Issue 18: bad input in an import gets a clear row/field error and loses nothing — the bad rows are reported, the
rest imported, never a 500, and nothing is committed that the report does not name. And the launch of a campaign
whose file had no good row (the schemathesis find: an unbound SQL parameter `due`)."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from duebot.accounts import importer
from duebot.accounts.importer import RowError, import_file
from duebot.accounts.models import MAX_AMOUNT, Account, AmountError, parse_amount
from duebot.accounts.store import AccountStore
from duebot.campaigns.service import CampaignError

TODAY = dt.date(2026, 11, 24)
HEADER = "account_id,name,phone,amount,due_date"
GOOD = "A-1,Ann,+1 212 555 0101,10.00,2026-10-01"


@pytest.fixture
def accounts(tmp_path: Path) -> AccountStore:
    return AccountStore(f"sqlite:///{tmp_path / 'bad-input.sqlite3'}")


def csv_file(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "accounts.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def stored_ids(store: AccountStore) -> set[str]:
    with store.session() as s:
        return set(s.scalars(select(Account.id)))


def only_error(report: importer.ImportReport, line: int, field: str) -> str:
    """The one error of a report: on `line`, naming `field`, short enough to read (a long field is not echoed)."""
    assert [n for n, _ in report.errors] == [line], report.errors
    reason = report.errors[0][1]
    assert reason.startswith(field), reason
    assert len(reason) < 300, reason
    return reason


# --- amounts ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", ["NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1E+1000000",
                                    "1e-1000000", "1e2", "-5", "0", "0.00", "0.001", "100000000", "1" * 40, "0x10",
                                    "١٢٣", "１２", "12.5.1"])
def test_a_bad_amount_in_a_csv_is_a_row_error_and_the_rest_is_imported(accounts, tmp_path, amount):
    path = csv_file(tmp_path, GOOD, f'B-1,Bob,+1 212 555 0102,"{amount}",2026-10-01',
                    "C-1,Cy,+1 212 555 0103,30.00,2026-10-01")
    report = import_file(path, accounts, TODAY)
    only_error(report, 3, "amount")
    assert report.imported == 2 and report.account_ids == ["A-1", "C-1"]
    assert stored_ids(accounts) == {"A-1", "C-1"}


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1E+1000000", "1e400", "-0.0", "[1]", '{"x": 1}',
                                 "true", "null", "1" + "0" * 5000])
def test_a_bad_amount_in_json_lines_is_a_row_error(accounts, tmp_path, raw):
    path = tmp_path / "batch.jsonl"
    good = {"account_id": "J-1", "name": "Li", "phone": "+86 138 0013 8000", "amount": 12.5, "due_date": "2026-10-01"}
    bad = json.dumps({**good, "account_id": "J-2"}).replace("12.5", raw)
    path.write_text(json.dumps(good) + "\n" + bad + "\n")
    report = import_file(path, accounts, TODAY)
    assert [n for n, _ in report.errors] == [2], report.errors
    assert "amount" in report.errors[0][1] or "JSON" in report.errors[0][1]
    assert stored_ids(accounts) == {"J-1"}
    assert accounts.get_account("J-1").amount_due == Decimal("12.50")


def test_plain_amounts_up_to_the_cap_are_kept_exactly(accounts, tmp_path):
    path = csv_file(tmp_path, 'A-1,Ann,+1 212 555 0101,"99,999,999.99",2026-10-01',
                    "A-2,Al,+1 212 555 0102,.5,2026-10-01", "A-3,Ai,+1 212 555 0103,+7,2026-10-01",
                    "A-4,Ax,+1 212 555 0104,230.500,2026-10-01")
    report = import_file(path, accounts, TODAY)
    assert report.errors == [] and report.imported == 4
    assert [accounts.get_account(f"A-{i}").amount_due for i in range(1, 5)] == [
        MAX_AMOUNT, Decimal("0.50"), Decimal("7.00"), Decimal("230.50")]


def test_parse_amount_says_why():
    assert parse_amount("230.50") == Decimal("230.50")
    for text, reason in [("NaN", "not a finite number"), ("1E+1000000", "plain decimal digits"),
                         ("-1", "positive"), ("1.001", "2 decimals"), ("100000000", "above the cap"),
                         ("abc", "not a number"), ("9" * 33, "characters")]:
        with pytest.raises(AmountError, match=reason):
            parse_amount(text)


def test_the_store_refuses_a_non_finite_amount_whatever_the_caller():
    with pytest.raises(AmountError):
        Account(id="X", amount_due=Decimal("NaN"))
    with pytest.raises(AmountError):
        Account(id="X", amount_due=Decimal("Infinity"))
    with pytest.raises(AmountError):
        Account(id="X", amount_due=MAX_AMOUNT + 1)


def test_a_bad_row_after_earlier_batches_loses_nothing(accounts, tmp_path, monkeypatch):
    """The issue's 500: NaN after earlier batches were committed. Now every batch is reported, bad rows named."""
    monkeypatch.setattr(importer, "BATCH", 3)
    rows = [f"R-{i},Sub {i},+1 212 555 {100 + i:04d},{10 + i}.00,2026-10-01" for i in range(10)]
    rows[7] = "R-7,Sub 7,+1 212 555 0107,NaN,2026-10-01"
    rows[8] = "R-8,Sub 8,+1 212 555 0108,1E+1000000,2026-10-01"
    report = import_file(csv_file(tmp_path, *rows), accounts, TODAY)
    assert [n for n, _ in report.errors] == [9, 10]
    assert report.created == 8 and report.account_ids == [f"R-{i}" for i in range(10) if i not in (7, 8)]
    assert stored_ids(accounts) == set(report.account_ids)


# --- other fields ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("due", "field"), [
    ("0001-01-01T00:00:00+01:00", "due_date"),  # before the first representable instant in UTC: OverflowError
    ("9999-12-31T23:00:00-05:00", "due_date"),
    ("9999-12-31", "due_date"), ("0001-01-01", "due_date"), ("1969-12-31", "due_date"),
    ("2027-12-31", "due_date"),  # more than a year after the import date
    ("2026-02-30", "due_date"), ("20/10/2026", "due_date"), ("2026-10-01T10:00:00", "due_date"),
])
def test_dates_out_of_range_or_malformed_are_row_errors(accounts, tmp_path, due, field):
    report = import_file(csv_file(tmp_path, GOOD, f"B-1,Bob,+1 212 555 0102,10.00,{due}"), accounts, TODAY)
    only_error(report, 3, field)
    assert stored_ids(accounts) == {"A-1"}


@pytest.mark.parametrize("born", ["2999-01-01", "2026-11-25", "1899-12-31", "yesterday"])
def test_birth_dates_in_the_future_or_absurd_past_are_row_errors(accounts, tmp_path, born):
    path = csv_file(tmp_path, f"{GOOD},1984-05-17", f"B-1,Bob,+1 212 555 0102,10.00,2026-10-01,{born}",
                    header=HEADER + ",birth_date")
    only_error(import_file(path, accounts, TODAY), 3, "birth_date")


@pytest.mark.parametrize("phone", ["12345", "+999", "+1 212 555 0102" + "9" * 300, "+1 212 555 0102\x00",
                                   "not a number", "+86 138"])
def test_bad_phone_numbers_are_row_errors(accounts, tmp_path, phone):
    report = import_file(csv_file(tmp_path, GOOD, f'B-1,Bob,"{phone}",10.00,2026-10-01'), accounts, TODAY)
    assert [n for n, _ in report.errors] == [3] and "phone" in report.errors[0][1]


@pytest.mark.parametrize(("given", "stored"), [("123X", "123X"), ("123x", "123X"), ("4472", "4472")])
def test_an_id_ending_in_x_is_accepted(accounts, tmp_path, given, stored):
    """A Chinese resident ID ends in the check character X: its last four may be three digits and X."""
    path = csv_file(tmp_path, f"{GOOD},{given}", header=HEADER + ",id_last4")
    assert import_file(path, accounts, TODAY).errors == []
    assert accounts.get_account("A-1").id_last4 == stored


@pytest.mark.parametrize("given", ["12X4", "X123", "abcd", "１２３４", "²³⁴⁵", "12345", "123"])
def test_other_id_endings_are_row_errors(accounts, tmp_path, given):
    only_error(import_file(csv_file(tmp_path, f"{GOOD},{given}", header=HEADER + ",id_last4"), accounts, TODAY),
               2, "id_last4")


@pytest.mark.parametrize(("column", "value"), [
    ("account_id", "A" * 65), ("name", "N" * 201), ("timezone", "a" * 5000),  # ZoneInfo raised OSError for it
    ("timezone", "../etc/passwd"), ("timezone", "Mars/Olympus"), ("currency", "DOLLARS"), ("currency", "$$$"),
    ("language", "english-please"), ("segment", "s" * 10_000), ("broken_promises", "²"),
    ("broken_promises", "9" * 5000), ("broken_promises", "1000"), ("disputes", "-1"), ("region", "XX"),
    ("consent_sms", "maybe"), ("pack", "mars"),
])
def test_long_or_invalid_fields_are_row_errors_with_a_short_reason(accounts, tmp_path, column, value):
    header = HEADER if column in HEADER.split(",") else f"{HEADER},{column}"
    row = {"account_id": "B-1", "name": "Bob", "phone": "+1 212 555 0102", "amount": "10.00",
           "due_date": "2026-10-01", column: value}
    good = GOOD + ("" if header == HEADER else ",")
    path = csv_file(tmp_path, good, ",".join(row[c] for c in header.split(",")), header=header)
    only_error(import_file(path, accounts, TODAY), 3, column)
    assert stored_ids(accounts) == {"A-1"}


@pytest.mark.parametrize("name", ["bell\x07", "nul\x00byte", "new\nline", "esc\x1b[31m", "c1\x85"])
def test_control_characters_are_row_errors(accounts, tmp_path, name):
    path = csv_file(tmp_path, GOOD, f'B-1,"{name}",+1 212 555 0102,10.00,2026-10-01')
    only_error(import_file(path, accounts, TODAY), 3, "name")


def test_a_field_over_the_csv_limit_fails_its_row_only(accounts, tmp_path):
    path = csv_file(tmp_path, GOOD, 'B-1,"' + "N" * 200_000 + '",+1 212 555 0102,10.00,2026-10-01',
                    "C-1,Cy,+1 212 555 0103,30.00,2026-10-01")
    report = import_file(path, accounts, TODAY)
    assert [n for n, _ in report.errors] == [3] and "CSV" in report.errors[0][1], report.errors
    assert stored_ids(accounts) == {"A-1", "C-1"}


def test_an_unbalanced_quote_is_reported_with_the_lines_it_swallowed(accounts, tmp_path):
    path = csv_file(tmp_path, GOOD, 'B-1,"Bob,+1 212 555 0102,10.00,2026-10-01', "C-1,Cy,+1 212 555 0103,3,2026-10-01")
    report = import_file(path, accounts, TODAY)
    assert [n for n, _ in report.errors] == [3]
    assert "runs to line 4" in report.errors[0][1]
    assert stored_ids(accounts) == {"A-1"}


# --- files that are not UTF-8 ----------------------------------------------------------------------------------

def test_rows_that_are_not_utf8_fail_alone(accounts, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\n".encode() + "B-1,Jos\xe9,+1 212 555 0102,10.00,2026-10-01\n".encode("latin-1")
                     + b"C-1,Cy,+1 212 555 0103,30.00,2026-10-01\n")
    report = import_file(path, accounts, TODAY)
    assert report.errors == [(3, "name: not UTF-8 text (save the file as UTF-8)")]
    assert stored_ids(accounts) == {"A-1", "C-1"}


def test_a_header_that_is_not_utf8_refuses_the_file_and_keeps_nothing(accounts, tmp_path):
    path = tmp_path / "bad-header.csv"
    path.write_bytes(b"account_id,n\xe4me,phone,amount,due_date\n" + GOOD.encode() + b"\n")
    with pytest.raises(RowError, match="not UTF-8"):
        import_file(path, accounts, TODAY)
    assert stored_ids(accounts) == set()


def test_a_utf16_file_with_its_bom_is_read(accounts, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + f"{HEADER}\n{GOOD}\nW-1,王芳,+86 138 0013 8000,5.00,2026-10-01\n"
                     .encode("utf-16-le"))
    assert import_file(path, accounts, TODAY).errors == []
    assert accounts.get_account("W-1").name == "王芳"


def test_a_broken_utf16_file_is_refused_before_anything_is_imported(accounts, tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + f"{HEADER}\n{GOOD}\n".encode("utf-16-le") + b"\x00\xd8")  # lone surrogate
    with pytest.raises(RowError, match="UTF-16"):
        import_file(path, accounts, TODAY)
    assert stored_ids(accounts) == set()


def test_json_lines_that_are_not_json_objects_or_nest_too_deep_are_row_errors(accounts, tmp_path):
    good = json.dumps({"account_id": "J-1", "name": "Li", "phone": "+1 212 555 0101", "amount": "1",
                       "due_date": "2026-10-01"})
    path = tmp_path / "x.jsonl"
    path.write_bytes("\n".join([good, "[" * 100_000, '{"account_id": "\\ud800"}', "\xff"]).encode("utf-8",
                                                                                              "surrogateescape"))
    report = import_file(path, accounts, TODAY)
    assert [n for n, _ in report.errors] == [2, 3, 4], report.errors
    assert stored_ids(accounts) == {"J-1"}


# --- the database's own refusal ------------------------------------------------------------------------------

def test_a_row_the_database_refuses_is_reported_and_the_rest_of_its_batch_kept(accounts, tmp_path):
    """If the database refuses a batch (here a real SQLite trigger, for one id), its rows are written one by one:
    the one refused is reported with the database's reason, every other one is in the store and the report."""
    con = sqlite3.connect(accounts.url.removeprefix("sqlite:///"))
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON accounts WHEN NEW.id = 'B-1' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END")
    con.commit()
    con.close()
    path = csv_file(tmp_path, GOOD, "B-1,Bob,+1 212 555 0102,10.00,2026-10-01", "C-1,Cy,+1 212 555 0103,3,2026-10-01")
    report = import_file(path, accounts, TODAY)
    assert report.errors == [(3, "the database refused the row: 'refused by the test trigger'")]
    assert report.account_ids == ["A-1", "C-1"] and report.created == 2
    assert stored_ids(accounts) == {"A-1", "C-1"}


# --- campaigns: checked before anything is imported; an empty campaign's launch -------------------------------

def test_a_bad_strategy_name_or_region_is_refused_before_any_row_is_imported(campaigns, tmp_path):
    path = csv_file(tmp_path, GOOD)
    folder = tmp_path / "folder.yml"
    folder.mkdir()
    not_yaml = tmp_path / "not.yml"
    not_yaml.write_bytes(b"\xff\xfe: [")
    for kwargs, reason in [({"strategy": str(folder)}, "strategy"), ({"strategy": str(not_yaml)}, "strategy"),
                           ({"strategy": "no-such-strategy"}, "strategy"), ({"name": "N" * 201}, "name"),
                           ({"name": "bell\x07"}, "name"), ({"region": "XX"}, "region")]:
        with pytest.raises(CampaignError, match=reason):
            campaigns.import_file(path, **kwargs, today=TODAY)
    with campaigns.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0
    assert campaigns.repo.all() == []


def test_launching_a_campaign_whose_file_had_no_good_row_is_a_clear_409_not_an_unbound_parameter(campaigns, tmp_path):
    """The schemathesis find: POST /campaigns/{id}/launch was a 500 (`A value is required for bind parameter
    'due'`) for a campaign imported from a generated file, none of whose rows were good."""
    imported = campaigns.import_file(csv_file(tmp_path, "X-1,Xi,12345,NaN,someday"), today=TODAY)
    assert imported.created and imported.added == 0 and len(imported.report.errors) == 1
    campaigns.repo.plan_initial(imported.campaign_id, [])  # the statement that failed: nothing to plan is fine
    with pytest.raises(CampaignError, match="has no accounts"):
        campaigns.launch(imported.campaign_id)
    assert campaigns.repo.get(imported.campaign_id).status == "draft"


def test_the_http_api_never_answers_500_to_bad_imports_or_their_launch(campaigns, tmp_path, monkeypatch):
    from duebot.campaigns import http
    from duebot.console.tokens import ApiTokens
    from duebot.console.users import Users
    from duebot.web import create_app

    Users(campaigns.store).add("mia", "campaign_manager", "manager-pass-123")
    token = ApiTokens(campaigns.store).create("mia").token
    monkeypatch.setattr(http, "_campaigns", campaigns)
    client = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False)
    files = {
        "none good.csv": f"{HEADER}\nX-1,Xi,12345,NaN,someday\n".encode(),
        "mixed.csv": f"{HEADER}\n{GOOD}\nB-1,Bob,+1 212 555 0102,Infinity,2026-10-01\n".encode(),
        "mixed.jsonl": b'{"account_id": "J-9", "name": "Jo", "phone": "+12125550109", "amount": 1E+1000000, '
                       b'"due_date": "2026-10-01"}\n{"account_id": "J-8", "name": "Jo", "phone": "+12125550108", '
                       b'"amount": NaN, "due_date": "2026-10-01"}\n',
        "latin1.csv": f"{HEADER}\n".encode() + "B-2,Jos\xe9,+1 212 555 0102,1,2026-10-01\n".encode("latin-1"),
        "no header.csv": b"\xff\xfe\x00garbage",
        "empty.csv": b"",
    }
    for name, content in files.items():
        r = client.post("/campaigns/import", files={"file": (name, content, "text/csv")})
        assert r.status_code in (200, 422), (name, r.status_code, r.text)
        if r.status_code == 200:
            launched = client.post(f"/campaigns/{r.json()['campaign_id']}/launch")
            assert launched.status_code in (200, 409), (name, launched.status_code, launched.text)
            if r.json()["imported"] == 0:
                assert launched.status_code == 409 and "no accounts" in launched.json()["detail"]
    assert stored_ids(campaigns.store) == {"A-1"}
