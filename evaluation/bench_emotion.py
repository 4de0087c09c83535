"""Emotion detection: accuracy on the held-out set (vs the VADER lexicon baseline) and the latency it adds.

    .venv/bin/python evaluation/bench_emotion.py [--requests 150] [--report OUT.json]

1. Macro-F1 and per-class F1 of the current emotion head (MiniLM + logistic regression) on
   evaluation/emotion_heldout/en.yml, next to VADER + a distress word list on the same lines.
2. Latency: starts the emotion service and a Rasa server (the current model, no action server: /model/parse
   only) on free loopback ports, twice: with DUEBOT_EMOTION_URL (the component calls the service) and without
   it (the component returns at once: Rasa's pipeline as before). Sends the same N utterances one after another
   each time (after 10 warm-up requests) and prints p50/p95 per turn and the difference; also the emotion
   service's own POST /emotion latency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _machine import cpu_model  # noqa: E402 - evaluation/ is the script's path
from _stats import summary  # noqa: E402

from duebot.emotion.dataset import load, load_dir
from duebot.emotion.evaluate import evaluate
from duebot.emotion.store import load_model
from duebot.processes import ServiceSpec, free_port, start, stop, wait_ready
from duebot.settings import Settings, load_settings  # noqa: E402
from duebot.training.train import model_path, rasa_env

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "evaluation" / "emotion_heldout" / "en.yml"




def latency_ms(samples: list[float]) -> dict[str, float]:
    """The report's figures for latencies in seconds: p50, p95 and mean in milliseconds, and n."""
    figures = summary(samples)
    return {**{f"{k}_ms": round(figures[k] * 1000, 2) for k in ("p50", "p95", "mean")}, "n": figures["n"]}


def timed_posts(client: httpx.Client, url: str, texts: list[str], key: str) -> list[float]:
    for text in texts[:10]:  # warm-up
        client.post(url, json={key: text}).raise_for_status()
    samples = []
    for text in texts:
        started = time.perf_counter()
        client.post(url, json={key: text}).raise_for_status()
        samples.append(time.perf_counter() - started)
    return samples


def rasa_parse(settings: Settings, workdir: Path, texts: list[str], emotion_url: str | None) -> tuple[list[float],
                                                                                                   int]:
    port = free_port()
    endpoints = workdir / "endpoints.yml"  # none: /model/parse needs no action server, tracker store or broker
    endpoints.write_text("{}\n")
    env = {**rasa_env(), "PYTHONPATH": str(settings.bot_dir)}
    env.pop("DUEBOT_EMOTION_URL", None)
    if emotion_url:
        env["DUEBOT_EMOTION_URL"] = emotion_url
    spec = ServiceSpec(name="rasa", argv=[str(settings.rasa_bin), "run", "--enable-api", "--model",
                                          str(model_path(settings)), "--interface", "127.0.0.1", "--port", str(port),
                                          "--endpoints", str(endpoints)],
                       log_path=workdir / f"rasa-{'with' if emotion_url else 'without'}.log",
                       ready=lambda: httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).status_code == 200,
                       env=env, cwd=settings.bot_dir, ready_timeout=300)
    service = start(spec)
    try:
        wait_ready(service)
        with httpx.Client(timeout=10) as client:
            samples = timed_posts(client, f"http://127.0.0.1:{port}/model/parse", texts, "text")
            tagged = sum("emotion" in client.post(f"http://127.0.0.1:{port}/model/parse", json={"text": t}).json()
                         for t in texts[:20])
        return samples, tagged
    finally:
        stop(service)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    settings = load_settings()

    accuracy = evaluate(load_model(settings), HELDOUT)
    # English lines only: the Rasa model timed below is the English one (the Chinese lines have their own model)
    texts = [e.text for e in load(HELDOUT)] + [e.text for e in load_dir(settings.nlu_dir / "emotion", language="en")]
    texts = (texts * (args.requests // len(texts) + 1))[:args.requests]

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        port = free_port()
        emotion_url = f"http://127.0.0.1:{port}"
        emotion = start(ServiceSpec(
            name="emotion", argv=[sys.executable, "-m", "duebot.emotion", "serve", "--port", str(port)],
            log_path=workdir / "emotion.log", env={"HF_HUB_OFFLINE": "1"}, ready_timeout=180,
            ready=lambda: httpx.get(f"{emotion_url}/health", timeout=2).status_code == 200))
        try:
            wait_ready(emotion)
            with httpx.Client(timeout=10) as client:
                service = timed_posts(client, f"{emotion_url}/emotion", texts, "text")
            with_component, tagged_with = rasa_parse(settings, workdir, texts, emotion_url)
        finally:
            stop(emotion)
        without_component, tagged_without = rasa_parse(settings, workdir, texts, None)

    latency = {"emotion_service": latency_ms(service), "parse_with_emotion": latency_ms(with_component),
               "parse_without_emotion": latency_ms(without_component)}
    added = {k: round(latency["parse_with_emotion"][k] - latency["parse_without_emotion"][k], 2)
             for k in ("p50_ms", "p95_ms", "mean_ms")}
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
               "python": platform.python_version(), "torch_threads": str(load_settings().emotion.threads)}
    command = "DUEBOT_DATA_DIR=... .venv/bin/python evaluation/bench_emotion.py " + " ".join(sys.argv[1:])
    model, base = accuracy["model"], accuracy["baseline_vader_lexicon"]
    print(f"command: {command.strip()}")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine['loadavg_1m']:.2f}, "
          f"Python {machine['python']}, torch threads {machine['torch_threads']}")
    print(f"held-out {accuracy['examples']} lines ({HELDOUT.relative_to(ROOT)}):")
    for name, figures in (("MiniLM + LR head", model), ("VADER + lexicon", base)):
        per_class = ", ".join(f"{label} {c['f1']:.3f}" for label, c in figures["per_class"].items())
        print(f"  {name:<17} macro-F1 {figures['macro_f1']:.3f}  accuracy {figures['accuracy']:.3f}  ({per_class})")
    legal = accuracy["legal_threat"]
    print(f"  legal threat      precision {legal['precision']:.3f} recall {legal['recall']:.3f} "
          f"(support {legal['support']})")
    print(f"latency over {args.requests} utterances, sequential:")
    for name, figures in latency.items():
        print(f"  {name:<22} p50 {figures['p50_ms']:7.2f} ms  p95 {figures['p95_ms']:7.2f} ms  "
              f"mean {figures['mean_ms']:7.2f} ms")
    print(f"  added per turn         p50 {added['p50_ms']:7.2f} ms  p95 {added['p95_ms']:7.2f} ms  (goal <= 20 ms)")
    print(f"  parse results carrying an emotion: with {tagged_with}/20, without {tagged_without}/20")
    if args.report:
        args.report.write_text(json.dumps({"command": command, "machine": machine, "latency": latency,
                                           "added": added, "accuracy": {k: v for k, v in accuracy.items()
                                                                        if k != "errors"}}, indent=2))


if __name__ == "__main__":
    main()
