"""Inbound SMS webhook → reply through Rasa: latency (p50/p95) and messages per second on this machine.

    .venv/bin/python evaluation/bench_sms.py [--accounts 100] [--sequential 200] [--concurrent 600] [--workers 16]

Starts `duebot serve` (Redis, evidence writer, action server, Rasa) in a scratch directory with N synthetic
accounts, and the duebot web app with the SMS router in its own uvicorn process. Every request is a signed
Twilio webhook (X-Twilio-Signature over the public URL and form, as Twilio sends it) with a fresh MessageSid,
from one of the N subscribers' numbers, answered in TwiML. Phases: HELP (keyword path, never reaches Rasa)
and "hello" (a full Rasa turn with the custom action), one at a time for latency, then W concurrent senders
for throughput. Prints the figures, the command and the machine, and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _machine import describe  # noqa: E402 - evaluation/ is the script's path
from _stats import summary  # noqa: E402

from duebot.processes import free_port
from duebot.settings import child_environment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "b" * 32


def sms_app():  # noqa: ANN201 - uvicorn factory: the web app as the lead mounts it, plus the SMS router
    from duebot.channels.sms import webhook as twilio_sms
    from duebot.web import create_app

    app = create_app()
    if not any(getattr(r, "path", "") == "/twilio/sms" for r in app.routes):
        app.include_router(twilio_sms.router)
    return app




def write_accounts(path: Path, count: int) -> list[str]:
    phones = [f"+1415555{100 + i:04d}"[:12] for i in range(count)]
    rows = ["account_id,name,phone,amount,due_date,currency,id_last4,timezone,pack,line_type,consent_ai_voice,"
            "consent_sms"]
    rows += [f"B-{i},Bench Person {i},{phone},230.50,2026-10-20,USD,4472,America/Los_Angeles,us,mobile,true,true"
             for i, phone in enumerate(phones)]
    path.write_text("\n".join(rows) + "\n")
    return phones


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}")
        try:
            if predicate():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout}s")


async def run_phase(url: str, phones: list[str], body: str, total: int, workers: int) -> tuple[list[float], float]:
    from duebot.channels.twilio_signature import sign

    latencies: list[float] = []
    counter = iter(range(total))
    failures: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            sid = "SM" + secrets.token_hex(16)
            params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": phones[i % len(phones)],
                      "To": "+15005550006", "Body": body, "NumSegments": "1", "ApiVersion": "2010-04-01"}
            headers = {"X-Twilio-Signature": sign(url, params, AUTH_TOKEN)}
            start = time.perf_counter()
            response = await client.post(url, data=params, headers=headers)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200 or "<Message>" not in response.text:
                failures.append(f"{response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=workers)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(workers)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, elapsed


def report(name: str, latencies: list[float], elapsed: float, workers: int) -> None:
    ms = summary(x * 1000 for x in latencies)
    print(f"{name:<34} n={ms['n']:<4} workers={workers:<3} p50={ms['p50']:7.1f} ms  "
          f"p95={ms['p95']:7.1f} ms  max={ms['max']:7.1f} ms  {ms['n'] / elapsed:7.1f} msg/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=600)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    from duebot.accounts.importer import import_csv
    from duebot.accounts.store import AccountStore
    from duebot.settings import load_settings

    models = load_settings().models_dir
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "var"
        data_dir.mkdir()
        (data_dir / "models").symlink_to(models)
        phones = write_accounts(Path(scratch) / "accounts.csv", args.accounts)
        import_csv(Path(scratch) / "accounts.csv", AccountStore(f"sqlite:///{data_dir / 'duebot.sqlite3'}"))
        redis_port, rasa_port, web_port = free_port(), free_port(), free_port()
        env = child_environment({"DUEBOT_DATA_DIR": str(data_dir), "DUEBOT_RASA_PORT": str(rasa_port),
                                 "DUEBOT_ACTIONS_PORT": str(free_port()), "DUEBOT_WEB_PORT": str(free_port()),
                                 "DUEBOT_REDIS_PORT": str(redis_port), "RASA_TELEMETRY_ENABLED": "false"})
        env.pop("REDIS_URL", None)
        serve_log = Path(scratch) / "serve.out"
        serve = subprocess.Popen([sys.executable, "-m", "duebot.cli", "serve"], env=env, cwd=ROOT,
                                 stdout=serve_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        web = None
        try:
            wait_for(lambda: b"duebot is up" in serve_log.read_bytes(), 300, "duebot serve", serve)
            public = f"http://127.0.0.1:{web_port}"
            web_env = {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                       "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "DUEBOT_PUBLIC_URL": public,
                       "DUEBOT_SMS_REPLY_RATE_PER_MINUTE": "100000"}
            web = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "evaluation"),
                                    "bench_sms:sms_app", "--factory", "--host", "127.0.0.1", "--port", str(web_port),
                                    "--log-level", "warning", "--no-access-log"],
                                   env=web_env, cwd=ROOT, stdout=(Path(scratch) / "web.out").open("wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
            wait_for(lambda: httpx.get(f"{public}/health").status_code == 200, 60, "web", web)
            url = f"{public}/twilio/sms"
            asyncio.run(run_phase(url, phones, "hello", min(20, args.sequential), 1))  # warm-up: models, pools
            print(describe())
            print(f"accounts: {args.accounts} (one SMS thread each; every request a fresh signed MessageSid)")
            for name, body, total, workers in (
                    ("HELP keyword (no Rasa), 1 at a time", "HELP", args.sequential, 1),
                    ("HELP keyword (no Rasa), concurrent", "HELP", args.concurrent, args.workers),
                    ("'hello' through Rasa, 1 at a time", "hello", args.sequential, 1),
                    ("'hello' through Rasa, concurrent", "hello", args.concurrent, args.workers)):
                latencies, elapsed = asyncio.run(run_phase(url, phones, body, total, workers))
                report(name, latencies, elapsed, workers)
            print(f"load average {os.getloadavg()[0]:.2f} at end")
        finally:
            for process in (web, serve):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
