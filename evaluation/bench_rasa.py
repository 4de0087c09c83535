"""Rasa server start time and /model/parse latency, measured on a stack started here.

    .venv/bin/python evaluation/bench_rasa.py [--requests 100]

Starts the embedded Redis, the action server, Rasa and the web service on free ports in a scratch data
directory (using the model `make setup` trained), times Rasa from spawn to ready, sends N parse requests
one after another, prints the figures, and stops everything.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from _machine import describe  # noqa: E402 - evaluation/ is the script's path
from _stats import summary  # noqa: E402

from duebot import secrets
from duebot.processes import free_port
from duebot.serve import Stack
from duebot.settings import export, load_settings  # noqa: E402

UTTERANCES = ["hello", "yes that's me", "stop calling me", "can I talk to a person", "are you a robot",
              "wrong number", "bye", "I want a human", "no", "good morning"]




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    base = load_settings()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        (data_dir / "models").symlink_to(base.models_dir)
        export({"REDIS_URL": None})
        settings = base.changed(DUEBOT_DATA_DIR=data_dir, REDIS_URL=None, DUEBOT_RASA_PORT=free_port(),
                           DUEBOT_ACTIONS_PORT=free_port(), DUEBOT_WEB_PORT=free_port(),
                                DUEBOT_REDIS_PORT=free_port())
        timings: dict[str, float] = {}

        def record(line: str) -> None:  # "rasa     ready in  22.7s  …"
            if " ready in " in line:
                name, _, _, seconds = line.split()[:4]
                timings[name] = float(seconds.rstrip("s"))

        stack = Stack(settings, say=record)
        try:
            stack.start_all()
            latencies = []
            token = {"token": secrets.secret("rasa_token", settings)}  # Rasa's API answers only with it
            with httpx.Client(base_url=settings.rasa_url, timeout=10, params=token) as client:
                client.post("/model/parse", json={"text": "warm up"})
                for i in range(args.requests):
                    text = UTTERANCES[i % len(UTTERANCES)]
                    started = time.perf_counter()
                    client.post("/model/parse", json={"text": text}).raise_for_status()
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            stack.stop_all()

    parse = summary(latencies)
    print(describe())
    print(f"rasa server start (spawn to /status 200): {timings['rasa']:.1f} s")
    print(f"/model/parse over {parse['n']} sequential requests: median {parse['p50']:.1f} ms, "
          f"p95 {parse['p95']:.1f} ms, max {parse['max']:.1f} ms")


if __name__ == "__main__":
    main()
