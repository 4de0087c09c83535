"""`rasa data validate` on the project: no error, and no warning but responses uttered from custom actions."""

from __future__ import annotations

import re
import subprocess

import pytest

from duebot.settings import load_settings
from duebot.training.train import LANGUAGE, rasa_env


@pytest.mark.rasa
def test_rasa_data_validates():
    settings = load_settings()
    result = subprocess.run(
        [str(settings.rasa_bin), "data", "validate", "--domain", "domain.yml", "--data", "data",
         str(settings.nlu_dir / LANGUAGE)],
        cwd=settings.bot_dir, env=rasa_env(), capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    warnings = re.findall(r"UserWarning: (.*)", output)
    # custom actions utter these responses, which Rasa's validator cannot see in stories or rules
    unused = re.compile(r"The utterance 'utter_\w+' is not used in any story or rule\.")
    other = [w for w in warnings if not unused.fullmatch(w)]
    assert other == [], other
