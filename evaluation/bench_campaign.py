"""Campaign benchmark: preview of N accounts (goal: 1M in ≤ 30 s) and sustained job throughput with worker processes.

    .venv/bin/python evaluation/bench_campaign.py                          # 1M preview, 2 workers x 3000 accounts
    .venv/bin/python evaluation/bench_campaign.py --accounts 20000 --jobs-accounts 300   # smoke size

Preview: accounts are bulk-inserted into a fresh SQLite store (not timed: that is the data, not the preview), then
`preview()` reads them in one join and asks the gate once per decision class; an exact preview (the gate per
account, with its own number) runs on a sample for comparison. Throughput: a redis-server on a free port, real
`duebot campaign worker` processes with the simulated contactor (realistic personas, no artificial latency),
evidence submitted for every gate decision; jobs/s = attempts recorded / wall time from launch to completion.
The throughput campaign's report (JSON, CSV, PNG plots) is written to --out."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine  # noqa: E402 - evaluation/ is the script's path

from duebot.processes import free_port
from duebot.settings import child_environment, export  # noqa: E402

US = [("212", "America/New_York"), ("415", "America/Los_Angeles"), ("312", "America/Chicago"),
      ("907", "America/Anchorage"), ("808", "Pacific/Honolulu")]
SEGMENTS = ["malicious"] * 18 + ["cash_flow"] * 35 + ["dispute"] * 12 + ["forgot"] * 5 + ["legacy"] * 20 \
    + ["new_business"] * 10  # seed 000 §2.2 shares



def fill(db: Path, n: int, campaign_id: str, seed: int = 1) -> float:
    """n accounts straight into SQLite with the store's schema (migrated by AccountStore), plus a campaign."""
    import sqlite3

    from duebot.accounts.models import account_algorithm, seal_context
    from duebot.accounts.store import OPT_OUT_CONTEXT, AccountStore

    keyring = AccountStore(f"sqlite:///{db}").keyring  # creates the schema; personal values are sealed at rest

    def sealed(field: str, account_id: str, value: str | None, algorithm: str) -> str | None:
        return None if value is None else keyring.seal_text(value, seal_context(field, account_id), algorithm)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = time.time()
    con.execute("INSERT INTO campaigns VALUES (?, ?, ?, ?, 'draft', ?, NULL, NULL)",
                (campaign_id, "bench", "default", None, now))
    batch, members, opt, disp = [], [], [], []
    for i in range(n):
        cn = i % 2 == 0
        if cn:
            phone, zone = f"+86138{i:08d}", "Asia/Shanghai"
        else:
            area, zone = US[i % len(US)]
            phone = f"+1{area}{200 + (i // 10000) % 700:03d}{i % 10000:04d}"
        born = None if rng.random() < 0.4 else f"{rng.randrange(1940, 2004)}-{rng.randrange(1, 13):02d}-15"
        aid, algorithm = f"B-{i}", account_algorithm("cn" if cn else "us", keyring)
        batch.append((aid, sealed("name", aid, f"Sub {i}", algorithm), sealed("phone", aid, phone, algorithm),
                      keyring.index(phone), None, sealed("birth_date", aid, born, algorithm),
                      f"{rng.randrange(20, 4000)}.00", "USD", "2026-09-01",
                      rng.choice(SEGMENTS), zone if rng.random() < 0.5 else None, "en", "cn" if cn else "us",
                      rng.choice(("mobile", "landline", "unknown")), rng.random() < 0.7, rng.random() < 0.95,
                      "open", False, zone, "2026-01-01", "2026-01-01"))
        members.append((campaign_id, f"B-{i}", 0, 0.0, False, "active", None))
        if rng.random() < 0.01:
            opt.append((keyring.index(phone), True, "sms", "bench", "2026-01-01",
                        keyring.seal_text(phone, OPT_OUT_CONTEXT)))
        if rng.random() < 0.01:
            disp.append((f"D-{i}", f"B-{i}", None, "bench", "", "open", "2026-01-01", None))
        if len(batch) == 50_000 or i == n - 1:
            con.executemany("INSERT INTO accounts (id, name_sealed, phone_sealed, phone_index, id_last4_sealed, "
                            "birth_date_sealed, amount_due, currency, due_date, segment, timezone, language, pack, "
                            "line_type, consent_ai_voice, consent_sms, status, wrong_number, phone_zones, created_at, "
                            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
            con.executemany("INSERT INTO campaign_accounts VALUES (?,?,?,?,?,?,?)", members)
            batch, members = [], []
    con.executemany("INSERT OR REPLACE INTO opt_outs (phone_index, opted_out, channel, source, at, phone_sealed) "
                    "VALUES (?,?,?,?,?,?)", opt)
    con.executemany("INSERT INTO disputes VALUES (?,?,?,?,?,?,?,?)", disp)
    con.commit()
    con.close()
    return time.perf_counter() - t0


def bench_preview(n: int, exact_sample: int) -> dict:
    from duebot.accounts.store import AccountStore
    from duebot.campaigns.preview import preview

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        fill_s = fill(db, n, "C-bench")
        store = AccountStore(f"sqlite:///{db}")
        now = time.time()
        result = preview(store, "C-bench", "default", now=now)
        out = {"accounts": n, "fill_seconds": round(fill_s, 1), "preview_seconds": round(result.seconds, 2),
               "accounts_per_second": round(n / result.seconds), "gate_evaluations": result.gate_calls,
               "by_reason": dict(result.by_reason.most_common()), "by_status": dict(result.by_status.most_common())}
        if exact_sample:
            db2 = Path(tmp) / "exact.sqlite3"
            fill(db2, exact_sample, "C-exact")
            exact = preview(AccountStore(f"sqlite:///{db2}"), "C-exact", "default", now=now, exact=True)
            out["exact_sample"] = {"accounts": exact_sample, "seconds": round(exact.seconds, 2),
                                   "accounts_per_second": round(exact_sample / exact.seconds)}
        return out


def bench_throughput(accounts: int, n_workers: int, concurrency: int, out_dir: Path) -> dict:
    import redis

    from duebot.accounts.store import AccountStore
    from duebot.campaigns.report import write_report
    from duebot.campaigns.service import Campaigns
    from duebot.processes import start, stop, wait_ready
    from duebot.redis_server import embedded_redis_spec
    from duebot.settings import RedisAddress

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        port = free_port()
        address = RedisAddress("127.0.0.1", port, 0, "")
        service = start(embedded_redis_spec(address, tmp_path / "redis", tmp_path / "redis.log"))
        procs: list[subprocess.Popen] = []
        try:
            wait_ready(service)
            wiring = {"REDIS_URL": f"redis://127.0.0.1:{port}/0",
                      "DUEBOT_DB_URL": f"sqlite:///{tmp_path / 'duebot.sqlite3'}", "DUEBOT_DATA_DIR": str(tmp_path)}
            export(wiring)  # this process and the workers it starts use the scratch Redis and store
            env = child_environment()
            zone = _midday_zone()
            lines = ["account_id,name,phone,amount,due_date,segment,timezone,pack,line_type,birth_date"]
            rng = random.Random(5)
            for i in range(accounts):
                born = rng.choice(["1999-03-01", "1950-06-01", "1980-01-01", ""])
                lines.append(f"T-{i},Sub {i},+86138{i:08d},{rng.randrange(20, 4000)}.00,2026-10-01,"
                             f"{rng.choice(SEGMENTS)},{zone},cn,mobile,{born}")
            csv_path = tmp_path / "bench.csv"
            csv_path.write_text("\n".join(lines) + "\n")
            strategy = tmp_path / "bench.yml"
            strategy.write_text(_STRATEGY)
            store = AccountStore(env["DUEBOT_DB_URL"])
            campaigns = Campaigns(store, redis.Redis(port=port))
            t_import = time.perf_counter()
            imported = campaigns.import_file(csv_path, strategy=str(strategy))
            import_s = time.perf_counter() - t_import
            for _ in range(n_workers):
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "duebot.campaigns.cli", "worker", "--concurrency", str(concurrency),
                     "--scheduler-interval", "0.2", "--sim-seed", "9"], env=env, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            time.sleep(2.0)  # workers import and connect
            t0 = time.perf_counter()
            campaigns.launch(imported.campaign_id)
            while campaigns.repo.get(imported.campaign_id).status != "completed":
                time.sleep(0.2)
            wall = time.perf_counter() - t0
            counts = campaigns.repo.attempt_counts(imported.campaign_id)
            jobs = sum(n for *_, n in counts)
            contacts = sum(n for _, channel, state, n in counts if state in ("done", "unknown") and channel != "human")
            report = write_report(store, imported.campaign_id, out_dir)
            return {"accounts": accounts, "workers": n_workers, "concurrency": concurrency,
                    "import_seconds": round(import_s, 2), "import_rows_per_second": round(accounts / import_s),
                    "wall_seconds": round(wall, 2), "attempts": jobs, "contacts": contacts,
                    "jobs_per_second": round(jobs / wall, 1), "contacts_per_second": round(contacts / wall, 1),
                    "report": report["files"], "kpis": report["kpis"]}
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
            stop(service)


_STRATEGY = """
version: 1
stop_on: [promise, plan, payment, dispute, opt_out, wrong_number, complaint, hardship]
pacing: {voice_calls_per_second: 1000, sms_per_second: 1000, max_concurrent_calls: 200}
steps:
  sms_reminder: {channel: sms, purpose: reminder}
  ai_call: {channel: voice, purpose: collection}
  second_call: {channel: voice, purpose: collection}
  human_queue: {channel: human, purpose: collection}
segments:
""" + "".join(f"  {s}: {{default: [sms_reminder, ai_call, second_call, human_queue]}}\n"
              for s in ("malicious", "cash_flow", "dispute", "forgot", "legacy", "new_business"))


def _midday_zone() -> str:
    import datetime as dt
    offset = 12 - dt.datetime.now(dt.UTC).hour
    offset = offset + 24 if offset < -12 else offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts to preview")
    parser.add_argument("--exact-sample", type=int, default=20_000, help="accounts for the exact (per-number) preview")
    parser.add_argument("--jobs-accounts", type=int, default=3000, help="accounts in the throughput campaign")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("var/bench/campaign"))
    parser.add_argument("--skip-preview", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    result = {"command": " ".join([".venv/bin/python", *sys.argv]), "machine": machine()}
    if not args.skip_preview:
        result["preview"] = bench_preview(args.accounts, args.exact_sample)
        print(json.dumps({"preview": result["preview"]}, indent=2), flush=True)
    if not args.skip_throughput:
        result["throughput"] = bench_throughput(args.jobs_accounts, args.workers, args.concurrency, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
