"""bot/rasa_speedups.py keeps Rasa's action-response check: same verdict and message as Rasa's own, in Rasa's Python."""

from __future__ import annotations

import json
import subprocess

import pytest

from duebot.settings import load_settings

pytestmark = pytest.mark.rasa  # runs code in Rasa's own Python

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
    settings = load_settings()
    python = settings.rasa_venv / "bin" / "python"
    done = subprocess.run([str(python), "-c", COMPARE, json.dumps(RESPONSES)], cwd=settings.root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(original == patched for original, patched in pairs), pairs
    verdicts = [original for original, _ in pairs]
    assert verdicts[:4] == [True, True, True, True]
    assert all(str(v).startswith("invalid: ") for v in verdicts[4:]), verdicts


EVENT_TYPES = """
import json, sys
sys.path.insert(0, "bot")
from rasa.shared.core.events import Event, SlotSet
from rasa.shared.utils.common import all_subclasses
original = Event.resolve_by_type
import rasa_speedups
rasa_speedups.install()
assert Event.resolve_by_type is not original

def outcome(fn, name, default=None):
    try:
        found = fn(name, default)
        return found.__name__ if found is not None else None
    except ValueError as exc:
        return "error: " + str(exc)

def compare():
    names = sorted({c.type_name for c in all_subclasses(Event)}) + ["topic", "no_such_event"]
    return [[name, outcome(original, name), outcome(Event.resolve_by_type, name)] for name in names] + [
        ["default", outcome(original, "nope", SlotSet), outcome(Event.resolve_by_type, "nope", SlotSet)]]

before = compare()
Event.resolve_by_type("slot")  # fills the table

class Reminded(Event):  # a custom event defined after the table was built
    type_name = "duebot_reminded"
    def __eq__(self, other):
        return isinstance(other, Reminded)
    def __hash__(self):
        return 1
    def as_story_string(self):
        return None

class Shadow(SlotSet):  # inherits "slot": Rasa keeps resolving "slot" to SlotSet
    pass

# A new direct subclass of Event comes first in Rasa's walk, so it takes over a name held by a deeper class:
# the table must be rebuilt, not answer from before.
deep = next(c for c in all_subclasses(Event) if c not in Event.__subclasses__())
Usurper = type("Usurper", (Event,), {"type_name": deep.type_name, "__eq__": lambda self, other: False,
                                     "__hash__": lambda self: 1, "as_story_string": lambda self: None})
assert original(deep.type_name) is Usurper

print(json.dumps({"before": before, "after": compare(), "usurped": outcome(Event.resolve_by_type, deep.type_name)}))
"""


def test_event_type_table_resolves_as_rasa_does_and_learns_new_events() -> None:
    settings = load_settings()
    python = settings.rasa_venv / "bin" / "python"
    done = subprocess.run([str(python), "-c", EVENT_TYPES], cwd=settings.root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for phase in ("before", "after"):
        assert all(original == patched for _, original, patched in result[phase]), result[phase]
    after = {name: patched for name, _, patched in result["after"]}
    assert after["duebot_reminded"] == "Reminded" and after["slot"] == "SlotSet" and after["user"] == "UserUttered"
    assert after["no_such_event"].startswith("error: ") and after["topic"] is None and after["default"] == "SlotSet"
    assert result["usurped"] == "Usurper"
