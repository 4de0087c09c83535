"""The ceiling of Rasa 3.6 itself on this machine: messages per second through its REST channel for the
smallest useful bot (keyword intents, one rule, in-memory trackers, no action server), then the same bot with
what every duebot turn needs at least: trackers and locks in Redis and one custom action on a rasa-sdk server.

    .venv/bin/python evaluation/bench_rasa_floor.py [--seconds 20] [--concurrency 32] [--turns 10]

Issue 7 asks for ≥ 200 SMS replies per second through Rasa. This measures the Rasa server's own CPU seconds
per message (from /proc, so the load generator's CPU is not counted against it): with C cores no Rasa
deployment on this machine answers more than C / (CPU per message) messages per second, whatever duebot does
around it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "evaluation"))

from _machine import describe  # noqa: E402
from _stats import percentile  # noqa: E402

from duebot.processes import free_port  # noqa: E402
from duebot.settings import child_environment  # noqa: E402

RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
MINIMAL = {
    "config.yml": """\
recipe: default.v1
assistant_id: floor
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: KeywordIntentClassifier
policies:
  - name: RulePolicy
""",
    "domain.yml": """\
version: "3.1"
intents: [greet]
responses:
  utter_greet:
    - text: "Hello!"
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
""",
    "data/nlu.yml": """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi
""",
    "data/rules.yml": """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
""",
}


WITH_ACTION = {
    "data/rules.yml": MINIMAL["data/rules.yml"].replace("action: utter_greet", "action: action_greet"),
    "domain.yml": MINIMAL["domain.yml"].replace("responses:", "actions: [action_greet]\nresponses:"),
    "actions/__init__.py": "",
    "actions/actions.py": """\
from rasa_sdk import Action


class ActionGreet(Action):
    def name(self):
        return "action_greet"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(response="utter_greet")
        return []
""",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that have been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def train(workdir: Path, files: dict[str, str]) -> Path:
    workdir.mkdir(exist_ok=True)
    (workdir / "endpoints.yml").write_text("")
    for name, text in files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text)
    subprocess.run([str(RASA), "train", "--fixed-model-name", "floor", "--out", "models", "--quiet"],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return workdir / "models" / "floor.tar.gz"


def start(command: list[str], cwd: Path, log: Path, ready: str) -> subprocess.Popen:
    env = child_environment({"TF_CPP_MIN_LOG_LEVEL": "3", "SANIC_WORKERS": "1"})
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited; see {log}")
        time.sleep(0.5)
    raise SystemExit(f"{command[0]} did not start in 240 s; see {log}")


def start_rasa(model: Path, port: int, log: Path, speedups: bool) -> subprocess.Popen:
    args = ["run", "-m", str(model), "-p", str(port), "-i", "127.0.0.1", "--enable-api", "--endpoints", "endpoints.yml"]
    command = [str(RASA), *args]
    if speedups:  # duebot's fix of Rasa's per-call schema check (bot/rasa_speedups.py), then Rasa's own CLI
        boot = (f"import sys; sys.path.insert(0, {str(ROOT / 'bot')!r}); import rasa_speedups; "
                "rasa_speedups.install(); from rasa.__main__ import main; sys.argv[0] = 'rasa'; main()")
        command = [str(RASA.parent / "python"), "-c", boot, *args]
    return start(command, model.parent.parent, log, f"http://127.0.0.1:{port}/status")


async def hammer(url: str, seconds: float, concurrency: int, text: str, turns: int) -> list[float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def sender(n: int, client: httpx.AsyncClient) -> None:
        turn = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            # Rasa's cost grows with the tracker: a new conversation every `turns` messages, as SMS ones are short
            response = await client.post(url, json={"sender": f"floor-{n}-{turn // turns}", "message": text})
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
            turn += 1

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(sender(n, client) for n in range(concurrency)))
    return latencies


def measure(name: str, model: Path, text: str, args: argparse.Namespace, workdir: Path,
            speedups: bool = False) -> None:
    port = free_port()
    process = start_rasa(model, port, workdir / f"rasa-{port}.log", speedups)
    try:
        url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        asyncio.run(hammer(url, 3, args.concurrency, text, args.turns))  # warm up
        cpu_before, wall_before = cpu_seconds(process.pid), time.perf_counter()
        latencies = asyncio.run(hammer(url, args.seconds, args.concurrency, text, args.turns))
        cpu = cpu_seconds(process.pid) - cpu_before
        wall = time.perf_counter() - wall_before
    finally:
        process.terminate()
        process.wait(30)
    count = len(latencies)
    per_message = cpu / count
    ceiling = (os.cpu_count() or 1) / per_message
    print(f"{name:<36} {count / wall:7.1f} msg/s   Rasa CPU {1000 * per_message:5.1f} ms/msg   "
          f"latency p50 {1000 * percentile(latencies, 0.5):4.0f} ms   ceiling on {os.cpu_count()} cores "
          f"{ceiling:5.0f} msg/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--turns", type=int, default=10, help="messages per conversation (a collection SMS dialogue)")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        model = train(workdir / "minimal", MINIMAL)
        print(f"trained the minimal bot in {time.perf_counter() - started:.0f} s; one Rasa process (SANIC_WORKERS=1), "
              f"{args.concurrency} concurrent senders for {args.seconds:g} s, {args.turns} messages per conversation")
        measure("minimal bot (keywords, one rule)", model, "hello", args, workdir)

        action_model = train(workdir / "action", {**MINIMAL, **WITH_ACTION})
        redis_port, actions_port = free_port(), free_port()
        redis_stores = "".join(f"{store}:\n  type: redis\n  url: 127.0.0.1\n  port: {redis_port}\n  key_prefix: floor\n"
                               for store in ("tracker_store", "lock_store"))
        action_endpoint = f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n"
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        actions = start([str(RASA), "run", "actions", "--actions", "actions", "-p", str(actions_port)],
                        workdir / "action", workdir / "actions.log", f"http://127.0.0.1:{actions_port}/health")
        try:
            for name, trained, endpoints, speedups in [
                ("+ trackers and locks in Redis", model, redis_stores, False),
                ("+ 1 custom action (rasa-sdk)", action_model, action_endpoint, False),
                ("+ both (what every duebot turn has)", action_model, redis_stores + action_endpoint, False),
                ("+ both, with duebot's Rasa speed-up", action_model, redis_stores + action_endpoint, True),
            ]:
                (trained.parent.parent / "endpoints.yml").write_text(endpoints)
                measure(name, trained, "hello", args, workdir, speedups)
        finally:
            for process in (actions, redis):
                process.terminate()
                process.wait(30)

if __name__ == "__main__":
    main()
