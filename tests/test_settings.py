"""The settings tree: one reader of the environment, validated, documented, masked; the clients' Redis policy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from duebot import clients
from duebot.processes import free_port
from duebot.settings import PROJECT_ROOT, VARIABLES, SettingsError, load_settings, markdown_table

DUEBOT = [sys.executable, "-m", "duebot.cli"]
# The settings tree, and the code that runs inside Rasa's own Python (which cannot import it).
ALLOWED = {"duebot/settings.py", "bot/components/emotion_component.py", "bot/evidence_broker.py"}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from duebot.settings import child_environment

    return subprocess.run([*DUEBOT, *args], env=child_environment(env), capture_output=True, text=True, timeout=60)


def test_nothing_but_the_settings_tree_reads_the_environment() -> None:
    readers = []
    for path in PROJECT_ROOT.rglob("*.py"):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        if relative.startswith((".venv", "var/", "tests/")) or relative in ALLOWED:
            continue
        if re.search(r"os\.environ|os\.getenv|envvar=", path.read_text(encoding="utf-8")):
            readers.append(relative)
    assert readers == []


def test_every_bad_value_is_refused_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_WEB_PORT", "eighty")
    monkeypatch.setenv("DUEBOT_SMS_MAX_SEGMENTS", "0")
    monkeypatch.setenv("DUEBOT_EVIDENCE_ASSESS_AFTER", "nan")
    monkeypatch.setenv("DUEBOT_CAMPAIGN_CONTACTORS", "fax=twilio_sms")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    for variable in ("DUEBOT_WEB_PORT", "DUEBOT_SMS_MAX_SEGMENTS", "DUEBOT_EVIDENCE_ASSESS_AFTER",
                     "DUEBOT_CAMPAIGN_CONTACTORS"):
        assert variable in message, message
    assert "'eighty'" in message


def test_an_empty_variable_means_unset_and_values_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_WEB_PORT", "")
    monkeypatch.setenv("DUEBOT_RASA_PORT", "6005")
    monkeypatch.setenv("DUEBOT_LANGUAGES", " en ")
    monkeypatch.setenv("DUEBOT_TWILIO_VOICE", "1")
    settings = load_settings()
    assert (settings.web_port, settings.rasa_port) == (8080, 6005)
    assert settings.languages_to_serve == ("en",) and settings.twilio.voice_enabled is True


def test_changed_replaces_values_by_variable_and_checks_them() -> None:
    base = load_settings()
    other = base.changed(DUEBOT_RASA_PORT=7005, REDIS_URL=None, DUEBOT_DATA_DIR="/tmp/elsewhere")
    assert (other.rasa_port, other.redis.url, other.data_dir) == (7005, None, Path("/tmp/elsewhere"))
    assert base.rasa_port != 7005 or base.rasa_port == other.rasa_port
    with pytest.raises(SettingsError, match="DUEBOT_WEB_PORT"):
        base.changed(DUEBOT_WEB_PORT="x")
    with pytest.raises(SettingsError, match="unknown settings: DUEBOT_NO_SUCH"):
        base.changed(DUEBOT_NO_SUCH="1")


def test_config_check_refuses_a_bad_value_and_every_command_stops_on_it() -> None:
    bad = _run(["config", "check"], {"DUEBOT_SIP_PORT": "sixty"})
    assert bad.returncode == 2 and "DUEBOT_SIP_PORT" in bad.stdout + bad.stderr
    stopped = _run(["version"], {"DUEBOT_RTP_PORTS": "20999-20000"})
    assert stopped.returncode == 2 and "DUEBOT_RTP_PORTS" in stopped.stdout + stopped.stderr
    good = _run(["config", "check"], {})
    assert good.returncode == 0 and "settings valid" in good.stdout


def test_config_show_masks_secrets_and_says_where_each_value_came_from() -> None:
    secrets = {"TWILIO_AUTH_TOKEN": "tok-4c1d-very-secret", "DUEBOT_CHAT_SECRET": "chat-key-zz9",
               "REDIS_URL": "redis://:redis-pass-77@10.0.0.5:6380/2", "DUEBOT_SIP_PASSWORD": "sip-pw-5"}
    shown = _run(["config", "show", "--json"], {**secrets, "DUEBOT_WEB_PORT": "8181"})
    assert shown.returncode == 0, shown.stderr
    rows = {row["variable"]: row for row in map(json.loads, shown.stdout.splitlines())}
    assert set(rows) == set(VARIABLES)
    for value in ("tok-4c1d-very-secret", "chat-key-zz9", "redis-pass-77", "sip-pw-5"):
        assert value not in shown.stdout
    assert rows["REDIS_URL"]["value"] == "redis://****@10.0.0.5:6380/2"
    assert rows["TWILIO_AUTH_TOKEN"] == {"group": "twilio", "variable": "TWILIO_AUTH_TOKEN", "value": "****",
                                         "source": "environment", "secret": True}
    assert (rows["DUEBOT_WEB_PORT"]["value"], rows["DUEBOT_WEB_PORT"]["source"]) == ("8181", "environment")
    assert (rows["DUEBOT_RASA_PORT"]["value"], rows["DUEBOT_RASA_PORT"]["source"]) == ("5005", "default")


def test_the_configuration_doc_is_generated_from_the_tree() -> None:
    doc = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert doc == markdown_table(), "regenerate: .venv/bin/duebot config docs > docs/configuration.md"
    for variable in VARIABLES:
        assert f"`{variable}`" in doc


def test_a_missing_redis_url_means_the_local_serve_redis_or_a_clear_error(
        monkeypatch: pytest.MonkeyPatch, redis_address) -> None:  # noqa: ANN001 - conftest fixture
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DUEBOT_HOST", "127.0.0.1")
    monkeypatch.setenv("DUEBOT_REDIS_PORT", str(free_port()))  # nothing listens there
    with pytest.raises(clients.RedisNotConfigured, match="REDIS_URL is not set.*DUEBOT_REDIS_PORT"):
        clients.redis_client()
    monkeypatch.setenv("DUEBOT_REDIS_PORT", str(redis_address.port))  # as under `duebot serve`
    assert clients.redis_client().ping()
    monkeypatch.setenv("REDIS_URL", redis_address.url)
    assert clients.redis_url() == redis_address.url
