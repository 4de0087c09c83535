"""The msgspec fast path of parse_request must accept and reject exactly what the reference validator does."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duebot.policies.audit import request_digest
from duebot.policies.check import check_many, parse_input
from duebot.policies.gate import RequestError, _parse_checked, parse_request
from duebot.policies.packs import load_pack

from .conftest import entry, request

NOON = "2026-11-24T20:00:00Z"
BASE = request(NOON, history=[entry("2026-11-20T19:00:00Z", channel="sms", outcome="delivered"),
                              {"at": "2026-11-21T19:00:00+01:00", "channel": "app"}])
# Values that are valid somewhere, invalid elsewhere, or the reference treats specially.
ODD = [None, True, False, 0, 1, "", "voice", "sms", "app", "reply", "failed", "landline", "S-9", "x",
       "2026-11-24T13:05:00", "2026-11-24t13:05:00z", "2026-11-24T13:05Z", "2026-11-24T13:05:00.1234567Z",
       [], {}, set(), (), [{"at": NOON, "channel": "voice"}], {"ai_voice": True}]
PATHS = [("now",), ("contact",), ("contact", "channel"), ("contact", "purpose"), ("contact", "to"),
         ("contact", "debt_id"), ("contact", "ai_voice"), ("contact", "text"), ("subscriber",),
         ("subscriber", "id"), ("subscriber", "opted_out"), ("subscriber", "dispute_open"),
         ("subscriber", "timezone"), ("subscriber", "line_type"), ("subscriber", "consent"),
         ("subscriber", "consent", "sms"), ("history",), ("history", 0), ("history", 0, "at"),
         ("history", 1, "channel"), ("history", 1, "purpose"), ("history", 0, "outcome"),
         ("history", 1, "reservation_id")]
DROP = object()


def outcome(parse: Any, data: object) -> tuple[str, Any]:
    try:
        req = parse(data)
    except RequestError as exc:
        return "error", str(exc)
    return "ok", (req.now, req.contact, req.subscriber, req.history)


def mutated(edits: list[tuple[tuple[Any, ...], object]]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for path, value in edits:
        node: Any = data
        try:
            for step in path[:-1]:
                node = node[step]
            if value is DROP:
                del node[path[-1]]
            else:
                node[path[-1]] = copy.deepcopy(value)  # ODD's lists and dicts are shared: never edit them
        except (KeyError, IndexError, TypeError):
            pass  # the path no longer exists after an earlier edit
    return data


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from([*ODD, DROP])), min_size=1, max_size=3))
def test_fast_path_agrees_with_reference(edits: list[tuple[tuple[Any, ...], object]]) -> None:
    data = mutated(edits)
    expected = outcome(_parse_checked, data)
    assert outcome(parse_request, data) == expected
    try:
        text = json.dumps(data).encode()
    except TypeError:  # sets are not JSON
        return
    assert outcome(parse_request, text) == outcome(_parse_checked, json.loads(text))


def decoded(text: str) -> list[Any]:
    """What the reference `json` path of parse_input yields."""
    try:
        data = json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize("text", [
    json.dumps(BASE), json.dumps([BASE, BASE]), json.dumps(BASE) + "\n\n" + json.dumps(BASE) + "\n",
    json.dumps(BASE, indent=2), json.dumps([BASE, {**BASE, "now": "noon"}]),
])
def test_json_text_decides_and_digests_like_decoded_objects(text: str) -> None:
    pack = load_pack("us")
    fast = check_many(parse_input(text), pack, None)
    objects = decoded(text)
    slow = check_many(objects, pack, None)
    assert fast.decisions == slow.decisions and fast.errors == slow.errors
    assert [request_digest(parse_request(i)) for i in parse_input(text) if b"noon" not in bytes(i)] == \
        [request_digest(o) for o in objects if o["now"] != "noon"]
