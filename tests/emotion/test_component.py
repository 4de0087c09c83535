"""The Rasa NLU component (run in Rasa's own Python) and the evidence broker's emotion fields."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from duebot.settings import load_settings

SETTINGS = load_settings()
RASA_PY = SETTINGS.rasa_venv / "bin" / "python"
pytestmark = pytest.mark.rasa  # every test runs code in Rasa's own Python (RASA_PY)

PROCESS = """
import json, sys, time
sys.path.insert(0, "bot")
from components.emotion_component import EmotionComponent
from rasa.shared.nlu.training_data.message import Message
out = []
for url, texts in json.loads(sys.argv[1]):
    component = EmotionComponent({**EmotionComponent.get_default_config(), "url": url})
    for text in texts:
        message = Message.build(text=text)
        started = time.monotonic()
        component.process([message])
        out.append({"emotion": message.as_dict(only_output_properties=True).get("emotion"),
                    "seconds": time.monotonic() - started})
print(json.dumps(out))
"""


class Stub(BaseHTTPRequestHandler):
    delay = 0.0
    seen: list[tuple[float, str]] = []  # (arrival wall-clock time, text), shared by every stub server

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Stub.seen.append((time.time(), body["text"]))
        time.sleep(self.delay)
        reply = json.dumps({"label": "angry", "score": 0.9, "scores": {"neutral": 0.1, "angry": 0.9,
                            "distressed": 0.0}, "negative": 0.9, "legal_threat": "lawyer" in body["text"],
                            "extra": "not copied"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _stub(delay: float) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (Stub,), {"delay": delay}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def processed() -> list[dict]:
    """One Rasa interpreter for every case (importing Rasa takes seconds): a quick, a slow and a dead service."""
    with _stub(0.0) as quick, _stub(2.0) as slow:
        cases = [(quick, ["you crooks", "my lawyer will call"]), (slow, ["hello", "hello again"]),
                 ("http://127.0.0.1:9", ["hello"])]
        result = subprocess.run([str(RASA_PY), "-c", PROCESS, json.dumps(cases)], cwd=SETTINGS.root,
                                capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_component_adds_the_emotion_to_the_parse_output(processed):
    first, second = processed[:2]
    assert first["emotion"] == {"label": "angry", "score": 0.9, "scores": {"neutral": 0.1, "angry": 0.9,
                                "distressed": 0.0}, "negative": 0.9, "legal_threat": False}
    assert second["emotion"]["legal_threat"] is True


def test_a_slow_service_costs_at_most_the_timeout_and_then_is_skipped(processed):
    slow, skipped = processed[2:4]
    assert slow["emotion"] is None and slow["seconds"] < 1.0
    assert skipped["emotion"] is None and skipped["seconds"] < 0.05  # backs off instead of waiting again


def test_a_dead_service_means_no_emotion_not_a_failure(processed):
    assert processed[4]["emotion"] is None


PREFETCH = """
import json, sys, time
sys.path.insert(0, "bot")
from components.emotion_component import EmotionComponent, EmotionPrefetch
from rasa.shared.nlu.training_data.message import Message
config = {**EmotionComponent.get_default_config(), "url": sys.argv[1]}
prefetch, collect = EmotionPrefetch(config), EmotionComponent(config)
message = Message.build(text="you people are thieves")
prefetch.process([message])
time.sleep(0.3)  # the tokenizer, featurizers and DIET run here in Rasa
collected_at = time.time()
collect.process([message])
print(json.dumps({"collected_at": collected_at,
                  "emotion": message.as_dict(only_output_properties=True).get("emotion")}))
"""


def test_the_prefetch_asks_before_the_classifiers_run_and_once() -> None:
    Stub.seen.clear()
    with _stub(0.1) as url:
        result = subprocess.run([str(RASA_PY), "-c", PREFETCH, url], cwd=SETTINGS.root, capture_output=True,
                                text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["emotion"]["label"] == "angry"
    asked = [at for at, text in Stub.seen if text == "you people are thieves"]
    assert len(asked) == 1  # the collector used the prefetched answer instead of asking again
    assert asked[0] < out["collected_at"]  # the service was working while the pipeline did


BROKER = """
import json, sys
sys.path.insert(0, "bot")
from evidence_broker import turn_fields
print(json.dumps([json.loads(turn_fields(e)["body"]) for e in json.loads(sys.argv[1])]))
"""


def test_the_evidence_turn_carries_the_emotion_unless_the_channel_measured_one():
    emotion = {"label": "distressed", "negative": 0.97, "legal_threat": False, "scores": {}}
    events = [
        {"event": "user", "sender_id": "c", "timestamp": 1.0, "text": "my dad died",
         "parse_data": {"intent": {"name": "hardship"}, "emotion": emotion}},
        {"event": "user", "sender_id": "c", "timestamp": 2.0, "text": "ok", "metadata": {"emotion_score": 0.2},
         "parse_data": {"intent": {"name": "affirm"}, "emotion": emotion}},
        {"event": "user", "sender_id": "c", "timestamp": 3.0, "text": "ok", "parse_data": {"intent": {}}},
    ]
    result = subprocess.run([str(RASA_PY), "-c", BROKER, json.dumps(events)], cwd=SETTINGS.root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    model, channel, none = json.loads(result.stdout)
    assert (model["emotion_score"], model["emotion_label"], model["legal_threat"]) == (0.97, "distressed", False)
    assert channel["emotion_score"] == 0.2 and "emotion_label" not in channel
    assert none["emotion_score"] is None and "emotion_label" not in none
