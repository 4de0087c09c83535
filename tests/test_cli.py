import subprocess
import sys

import pytest

DUEBOT = [sys.executable, "-m", "duebot.cli"]


@pytest.mark.parametrize("args", [[], ["serve"], ["train"], ["shell"], ["version"], ["gate"], ["gate", "check"],
                                  ["evidence"], ["evidence", "verify"], ["evidence", "export"]])
def test_every_command_has_help(args):
    result = subprocess.run([*DUEBOT, *args, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.rasa
def test_version_names_duebot_and_rasa():
    result = subprocess.run([*DUEBOT, "version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "duebot 0.1.0" in result.stdout
    assert "3.6.21" in result.stdout


def test_shell_says_clearly_when_no_bot_answers():
    from duebot.processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([*DUEBOT, "shell", "--url", url], input="hello\n", capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "duebot serve" in result.stdout
