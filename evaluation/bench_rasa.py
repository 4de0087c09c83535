"""Rasa server start time and /model/parse latency, measured on a stack started here.

    .venv/bin/python evaluation/bench_rasa.py [--requests 100]

Starts the embedded Redis, the action server, Rasa and the web service on free ports in a scratch data
directory (using the model `make setup` trained), times Rasa from spawn to ready, sends N parse requests
one after another, prints the figures, and stops everything.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from _machine import cpu_model, free_port  # noqa: E402 - evaluation/ is the script's path

from duebot.config import Settings
from duebot.serve import Stack

UTTERANCES = ["hello", "yes that's me", "stop calling me", "can I talk to a person", "are you a robot",
              "wrong number", "bye", "I want a human", "no", "good morning"]




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    base = Settings.from_env()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        (data_dir / "models").symlink_to(base.models_dir)
        os.environ.pop("REDIS_URL", None)
        settings = replace(base, data_dir=data_dir, redis_url=None, rasa_port=free_port(),
                           actions_port=free_port(), web_port=free_port(), embedded_redis_port=free_port())
        timings: dict[str, float] = {}

        def record(line: str) -> None:  # "rasa     ready in  22.7s  …"
            if " ready in " in line:
                name, _, _, seconds = line.split()[:4]
                timings[name] = float(seconds.rstrip("s"))

        stack = Stack(settings, say=record)
        try:
            stack.start_all()
            latencies = []
            with httpx.Client(base_url=settings.rasa_url, timeout=10) as client:
                client.post("/model/parse", json={"text": "warm up"})
                for i in range(args.requests):
                    text = UTTERANCES[i % len(UTTERANCES)]
                    started = time.perf_counter()
                    client.post("/model/parse", json={"text": text}).raise_for_status()
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            stack.stop_all()

    latencies.sort()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"rasa server start (spawn to /status 200): {timings['rasa']:.1f} s")
    print(f"/model/parse over {len(latencies)} sequential requests: median {statistics.median(latencies):.1f} ms, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
