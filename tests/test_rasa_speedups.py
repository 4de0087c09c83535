"""bot/rasa_speedups.py keeps Rasa's action-response check: same verdict and message as Rasa's own, in Rasa's Python."""

from __future__ import annotations

import json
import subprocess

from duebot.config import Settings

COMPARE = """
import json, sys
sys.path.insert(0, "bot")
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
original = RemoteAction._validate_action_result
import rasa_speedups
rasa_speedups.install()
patched = RemoteAction._validate_action_result
assert patched is not original
action = object.__new__(RemoteAction)
def verdict(fn, response):
    try:
        return fn(action, response)
    except ValidationError as exc:
        return "invalid: " + exc.message
out = [[verdict(original, r), verdict(patched, r)] for r in json.loads(sys.argv[1])]
print(json.dumps(out))
"""

RESPONSES = [
    {"events": [{"event": "slot", "name": "verified", "value": True}],
     "responses": [{"response": "utter_greet", "first_name": "Jane"}]},
    {"events": [], "responses": []},
    {},
    {"responses": [{"text": None}]},  # Rasa's schema does not look inside a response
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"events": [{"event": 7}]},
    {"events": [{"event": "slot", "name": "x", "value": None, "timestamp": "yesterday"}]},
    {"responses": "x"},
    {"events": [{"event": "nonexistent"}]},
    {"events": [{"event": "slot"}]},
    [],
]


def test_patched_check_gives_rasas_verdicts() -> None:
    settings = Settings.from_env()
    python = settings.rasa_venv / "bin" / "python"
    done = subprocess.run([str(python), "-c", COMPARE, json.dumps(RESPONSES)], cwd=settings.root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(original == patched for original, patched in pairs), pairs
    verdicts = [original for original, _ in pairs]
    assert verdicts[:4] == [True, True, True, True]
    assert all(str(v).startswith("invalid: ") for v in verdicts[4:]), verdicts
