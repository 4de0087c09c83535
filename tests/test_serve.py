"""`duebot serve` end to end: real Redis, real Rasa, real action server (about a minute)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from duebot.config import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.rasa

REPO_MODELS = Settings.from_env().models_dir


class Served:
    def __init__(self, process: subprocess.Popen, data_dir: Path, rasa_port: int) -> None:
        self.process = process
        self.data_dir = data_dir
        self.rasa = f"http://127.0.0.1:{rasa_port}"

    def state(self) -> dict:
        return json.loads((self.data_dir / "run" / "serve.json").read_text())

    def say(self, sender: str, text: str) -> list[str]:
        reply = httpx.post(f"{self.rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                           timeout=30)
        reply.raise_for_status()
        return [message.get("text", "") for message in reply.json()]


def _start(tmp_path: Path, extra_env: dict[str, str]) -> Served:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(REPO_MODELS)  # the model trained by `make setup`
    rasa_port = free_port()
    env = {
        **os.environ,
        "DUEBOT_DATA_DIR": str(data_dir),
        "DUEBOT_RASA_PORT": str(rasa_port),
        "DUEBOT_ACTIONS_PORT": str(free_port()),
        "DUEBOT_WEB_PORT": str(free_port()),
        "DUEBOT_REDIS_PORT": str(free_port()),
        **extra_env,
    }
    if "REDIS_URL" not in extra_env:
        env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "duebot.cli", "serve"], env=env,
                               stdout=(tmp_path / "serve.out").open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    served = Served(process, data_dir, rasa_port)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"duebot serve exited: {(tmp_path / 'serve.out').read_text()}")
        if b"duebot is up" in (tmp_path / "serve.out").read_bytes():
            return served
        time.sleep(0.5)
    pytest.fail("duebot serve did not come up in 240 s")


def _stop(served: Served) -> dict:
    state = served.state()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=60)
    return state


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def served_on_test_redis(tmp_path_factory, redis_address) -> Iterator[Served]:
    served = _start(tmp_path_factory.mktemp("serve"), {"REDIS_URL": redis_address.url})
    try:
        yield served
    finally:
        if served.process.poll() is None:
            _stop(served)


def test_conversation_survives_a_rasa_crash(served_on_test_redis, redis_address):
    import redis

    redis_client = redis.Redis(host=redis_address.host, port=redis_address.port)
    served = served_on_test_redis
    sender = "restart-check"
    assert served.say(sender, "hello") == [
        "Hello, this is duebot, the automated assistant of your telephone operator. "
        "Am I speaking with the account holder?"
    ]
    assert redis_client.exists(f"duebot:tracker:{sender}")

    rasa_pid = served.state()["rasa"]["pid"]
    os.kill(rasa_pid, signal.SIGKILL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = served.state()
        if state["rasa"]["restarts"] == 1 and state["rasa"]["pid"] != rasa_pid:
            break
        time.sleep(0.5)
    else:
        pytest.fail("serve did not restart Rasa")
    assert httpx.get(f"{served.rasa}/status", timeout=5).status_code == 200

    # "yes" only leads to the identity check because the tracker still holds the greeting turn.
    assert served.say(sender, "yes, that's me") == [
        "Thank you. To protect your privacy, I first need to confirm your identity. "
        "Please tell me your date of birth."
    ]
    tracker = httpx.get(f"{served.rasa}/conversations/{sender}/tracker", timeout=10).json()
    user_turns = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert user_turns == ["hello", "yes, that's me"]


def test_parse_api_and_action_server_answer(served_on_test_redis):
    served = served_on_test_redis
    parsed = httpx.post(f"{served.rasa}/model/parse", json={"text": "please stop calling me"}, timeout=10).json()
    assert parsed["intent"]["name"] == "opt_out"
    # The reply comes from the custom action in the rasa-sdk action server.
    assert served.say("optout-check", "stop calling me") == [
        "Understood. You will not be contacted again by this service on any channel."
    ]
    tracker = httpx.get(f"{served.rasa}/conversations/optout-check/tracker", timeout=10).json()
    assert tracker["slots"]["opted_out"] is True


def test_shell_talks_to_the_running_bot(served_on_test_redis):
    result = subprocess.run([sys.executable, "-m", "duebot.cli", "shell", "--url", served_on_test_redis.rasa,
                             "--sender", "shell-check"], input="hello\nare you a robot?\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bot> Hello, this is duebot" in result.stdout
    assert "bot> I am an automated assistant" in result.stdout


def test_embedded_redis_persists_and_everything_stops(tmp_path):
    served = _start(tmp_path, {})
    try:
        assert served.say("embedded", "hi")
        state = served.state()
        assert set(state) == {"redis", "actions", "rasa", "web"}
        redis_port = state["redis"]["url"].rsplit(":", 1)[1].split("/")[0]
        info = subprocess.run(["redis-cli", "-p", redis_port, "config", "get", "appendonly"],
                              capture_output=True, text=True).stdout.split()
        assert info == ["appendonly", "yes"]
        web = state["web"]["url"]
        assert httpx.get(f"{web}/health", timeout=5).json()["status"] == "ok"
    finally:
        state = _stop(served)
    assert served.process.returncode == 0
    for service in state.values():
        assert _gone(service["pid"]), service
    assert not (served.data_dir / "run" / "serve.json").exists()
