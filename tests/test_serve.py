"""`duebot serve` end to end: real Redis, real Rasa, real action server (about a minute)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.served import gone, served_fixture

served_on_test_redis = served_fixture(contactors=("sms=twilio_sms",))
served_embedded = served_fixture(test_redis=False, accounts=None, scope="function")  # its own Redis, and stopped here


def test_conversation_survives_a_rasa_crash(served_on_test_redis, redis_address):
    import redis

    redis_client = redis.Redis(host=redis_address.host, port=redis_address.port)
    served = served_on_test_redis
    sender = "restart-check"
    call = {"account_id": "A-1", "channel": "voice"}
    assert served.say(sender, "hello", call) == [
        "Hello, this is duebot, the automated assistant of your telephone operator. May I speak with Jane, please?"
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
    assert served.rasa_api("GET", "/status", timeout=5).status_code == 200

    # "yes" leads to the identity check only because the tracker in Redis remembers the bot's question.
    assert served.say(sender, "yes, that's me", call) == [
        "Thank you. To protect your privacy, please tell me the last four digits of your ID number."
    ]
    tracker = served.rasa_api("GET", f"/conversations/{sender}/tracker").json()
    user_turns = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert user_turns == ["hello", "yes, that's me"]


def test_parse_api_and_action_server_answer(served_on_test_redis):
    served = served_on_test_redis
    parsed = served.rasa_api("POST", "/model/parse", json={"text": "please stop calling me"}).json()
    assert parsed["intent"]["name"] == "opt_out"
    # The reply comes from the custom action in the rasa-sdk action server.
    assert served.say("optout-check", "stop calling me") == [
        "Understood. You will not be contacted again by this service on any channel."
    ]
    tracker = served.rasa_api("GET", "/conversations/optout-check/tracker").json()
    assert tracker["slots"]["opted_out"] is True


def test_the_campaign_worker_uses_the_configured_contactors(served_on_test_redis):
    log = served_on_test_redis.data_dir / "log" / "campaign.log"
    assert "sms=twilio_sms voice=simulated" in " ".join(log.read_text().split()), log.read_text()[-2000:]


def test_shell_talks_to_the_running_bot(served_on_test_redis):
    result = subprocess.run([sys.executable, "-m", "duebot.cli", "shell", "--url", served_on_test_redis.rasa,
                             "--sender", "shell-check"], input="hello\nare you a robot?\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bot> Hello, this is duebot" in result.stdout
    assert "bot> I am an automated assistant" in result.stdout


def test_embedded_redis_persists_and_everything_stops(served_embedded):
    served = served_embedded
    try:
        assert served.say("embedded", "hi")
        state = served.state()
        assert set(state) == {"redis", "evidence", "actions", "emotion", "rasa", "web", "campaign"}
        redis_port = state["redis"]["url"].rsplit(":", 1)[1].split("/")[0]
        password = (served.data_dir / "secrets" / "redis_password").read_text().strip()
        anonymous = subprocess.run(["redis-cli", "-p", redis_port, "ping"], capture_output=True, text=True)
        assert "NOAUTH" in anonymous.stdout + anonymous.stderr  # the embedded Redis asks every caller for it
        info = subprocess.run(["redis-cli", "-p", redis_port, "config", "get", "appendonly"], capture_output=True,
                              text=True, env={"REDISCLI_AUTH": password, "PATH": "/usr/bin:/bin"}).stdout.split()
        assert info == ["appendonly", "yes"]
        web = state["web"]["url"]
        assert httpx.get(f"{web}/health", timeout=5).json()["status"] == "ok"
    finally:
        state = served.stop()
    assert served.process.returncode == 0
    for service in state.values():
        assert gone(service["pid"]), service
    assert not (served.data_dir / "run" / "serve.json").exists()
