"""`duebot report --by branch --period week` writes its CSV tables, report.json and plots; the importer keeps the
`branch` column; the /metrics collector serves a gauge per headline KPI. Same fixed book as test_money_kpis.py."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from duebot.accounts.importer import import_file
from duebot.accounts.store import AccountStore
from duebot.campaigns import money
from duebot.campaigns.branches import branch_names, branches
from duebot.campaigns.metrics import CampaignCollector, MoneyGauges
from tests.campaigns.test_money_kpis import AS_OF, fill

DUEBOT = [sys.executable, "-m", "duebot.cli"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_report_cli_writes_csv_json_and_plots(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    store = AccountStore(f"sqlite:///{data / 'duebot.sqlite3'}")
    fill(store, data / "evidence")
    env = {**os.environ, "DUEBOT_DATA_DIR": str(data), "DUEBOT_DB_URL": f"sqlite:///{data / 'duebot.sqlite3'}",
           "DUEBOT_KPI_TIMEZONE": "UTC"}
    out = tmp_path / "kpis"
    done = subprocess.run([*DUEBOT, "report", "--by", "branch", "--period", "week", "--since", "2026-11-01",
                           "--until", "2026-11-30", "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "2026-W49" in done.stdout and "self-service repayment rate" in done.stdout
    for name in ("kpis", "kpis_vs_targets", "weekly_progress", "monthly_summary", "process_checks",
                 "quarterly_targets"):
        assert (out / f"{name}.csv").stat().st_size > 100, name
    for name in ("recovery_by_period", "amounts_by_period", "kpis_vs_targets"):
        assert (out / f"{name}.png").stat().st_size > 10_000, name
    weekly = {(r["group"], r["period"]): r for r in rows(out / "weekly_progress.csv")}
    assert set(g for g, _ in weekly) == {"North", "South", "all"}
    assert weekly[("all", "2026-W46")]["amount_recovered"] == "800.00"
    assert weekly[("all", "2026-W46")]["opening_arrears"] == "1880.00"
    monthly = {(r["group"], r["period"]): r for r in rows(out / "monthly_summary.csv")}
    assert monthly[("all", "2026-11")]["amount_recovered"] == "1250.00"
    assert float(monthly[("all", "2026-11")]["self_service_repayment_rate"]) == 0.8
    targets = [r for r in rows(out / "kpis_vs_targets.csv") if r["kpi"] == "self_service_repayment_rate"]
    assert targets and all(r["target"] == "0.65" for r in targets)
    body = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert body["by"] == "branch" and body["period"] == "week" and body["timezone"] == "UTC"
    assert body["targets"]["compliance_rate"]["target"] == 1.0 and body["evidence_read"] is True
    assert {h["kpi"] for h in body["headline"]} >= {"recovery_rate_amount", "self_service_repayment_rate"}

    # --json prints the same report; a bad option is refused with a reason
    done = subprocess.run([*DUEBOT, "report", "--by", "none", "--period", "quarter", "--since", "2026-10-01",
                           "--until", "2026-12-31", "--out", str(tmp_path / "q"), "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["groups"] == ["all"]
    done = subprocess.run([*DUEBOT, "report", "--period", "fortnight"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "--period is one of week, month, quarter, year" in done.stderr


def test_importer_keeps_the_branch_column(tmp_path: Path) -> None:
    store = AccountStore(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    today = dt.date(2026, 11, 24)
    head = "account_id,name,phone,amount,due_date"
    first = tmp_path / "a.csv"
    first.write_text(f"{head},branch\nB-1,Ann,+14155550101,10.00,2026-10-01,  North   Office \n"
                     f"B-2,Bob,+14155550102,20.00,2026-10-01,\nB-3,Cy,+14155550103,lots,2026-10-01,South\n")
    report = import_file(first, store, today=today)
    assert report.imported == 2 and [line for line, _ in report.errors] == [4]
    assert branches(store) == {"B-1": "North Office", "B-2": ""}  # B-3 failed: no branch kept for it
    # a file without the column leaves branches as they are; one with it replaces them
    plain = tmp_path / "b.csv"
    plain.write_text(f"{head}\nB-1,Ann,+14155550101,10.00,2026-10-01\n")
    import_file(plain, store, today=today)
    assert branches(store)["B-1"] == "North Office"
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(json.dumps({"account_id": "B-2", "name": "Bob", "phone": "+14155550102", "amount": "20.00",
                                 "due_date": "2026-10-01", "branch": "South"}) + "\n")
    import_file(jsonl, store, today=today)
    assert branches(store) == {"B-1": "North Office", "B-2": "South"} and branch_names(store) == ["North Office",
                                                                                                  "South"]
    long = tmp_path / "d.csv"
    long.write_text(f"{head},branch\nB-4,Di,+14155550104,5.00,2026-10-01,{'x' * 65}\n")
    assert "branch: 65 characters" in import_file(long, store, today=today).errors[0][1]


def test_metrics_serve_a_gauge_per_headline_kpi(tmp_path: Path) -> None:
    store = AccountStore(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    fill(store, tmp_path / "evidence")
    gauges = MoneyGauges(store, evidence=tmp_path / "evidence", ttl=60, clock=lambda: AS_OF - 3600, tz="UTC")
    campaigns = SimpleNamespace(store=store, repo=SimpleNamespace(all=lambda: []),
                                control=SimpleNamespace(backlog=lambda: {"waiting": 0, "pending": 0},
                                                        workers=lambda: [], slots_in_use=lambda: 0))
    registry = CollectorRegistry()
    registry.register(CampaignCollector(campaigns, money_gauges=gauges))
    text = generate_latest(registry).decode()
    for key in money.HEADLINE:
        assert f"# TYPE duebot_kpi_{key} gauge" in text, key
    # November to date (the clock is an hour before December): the hand-computed figures
    assert 'duebot_kpi_self_service_repayment_rate{branch="all",period="2026-11"} 0.8' in text
    assert 'duebot_kpi_recovery_rate_amount{branch="North",period="2026-11"} 0.85' in text
    assert 'duebot_kpi_target{kpi="self_service_repayment_rate"} 0.65' in text
    assert 'duebot_kpi_amount_recovered{branch="all",period="2026-11"} 1250.0' in text
    calls = []
    gauges.compute = lambda: calls.append(1) or {}  # cached: a second scrape within the TTL computes nothing
    generate_latest(registry)
    assert calls == []
