"""Words match deeds (issue 20): a response that tells the subscriber something was done (sent, recorded, noted,
opened, set up, passing you to a person, 已发送, 已记录, 已为您, 转接 …) is said only by action code, right after the
call that does it, in the same function.

Every such response of bot/domain.yml (either language) must have an entry in DEEDS; the test reads the action code
with `ast` and checks that every `turn.say(...)` of the response sits in a function the entry names, after each
call the entry lists there and, where the entry says so, inside the `if` that tests the deed's result. A new
claiming response without an entry, a stale entry, a new place that says it, or a deed moved after the words fail.
KNOWN_GAPS are claims that are not backed yet: listed with the reason, checked for where they are said only.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from duebot.settings import PROJECT_ROOT

DOMAIN = yaml.safe_load((PROJECT_ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
ACTIONS = sorted((PROJECT_ROOT / "bot" / "actions").glob("*.py"))
RASA_DATA = sorted((PROJECT_ROOT / "bot" / "data").glob("*.yml"))

# What a sentence that reports a deed looks like; questions ("Shall I pass you to a person?", 需要为您转接吗？) are
# offers, not claims, and are left out before matching.
CLAIMS = [re.compile(p) for p in (
    r"\bsent\b", r"\brecorded\b", r"\bnoted\b", r"\bopened case\b", r"\b(?:is|are|been) set up\b",
    r"\bpassing you\b", r"\basking a member of our team\b", r"\bwill call you back\b",
    r"\bwill not be contacted\b", r"\bupdate our records\b",
    r"已发送", r"发送到", r"已记录", r"已经记录", r"已为您", r"登记工单", r"这就为您转接", r"马上请工作人员",
    r"会在.*回电", r"会更新记录",
)]


@dataclass(frozen=True)
class Deed:
    """Where a claim may be said and what must come before it there: `calls` are function or method names
    ("add_promise" for store().add_promise); "record:<kind>" is an outcome written with _record/record before the
    words; `guard` must appear in the test of an `if` whose body holds the words (the deed's result)."""

    calls: tuple[str, ...]
    guard: str | None = None


DEEDS: dict[str, dict[str, Deed]] = {
    # the link went out through the SMS sender (payments/notify.py text_link → SmsSender.send → Twilio)
    "utter_payment_link_sent": {"_send_link": Deed(("text_link", "record:payment_link"), guard="delivery.sent")},
    "utter_partial_recorded": {"_commit": Deed(("_send_link", "add_promise"), guard="sent")},
    "utter_promise_recorded": {"_commit": Deed(("record:kind", "add_promise"))},
    "utter_plan_recorded": {"_commit": Deed(("record:kind", "add_plan"))},
    "utter_dispute_opened": {"_open_dispute": Deed(("open_dispute", "record:dispute"))},
    "utter_already_paid": {"_open_dispute": Deed(("open_dispute", "record:dispute"))},
    # the number is held on every channel (the gate reads it). Without a known account there is no number to hold,
    # yet the same words are said: see the report of issue 20.
    "utter_opt_out_confirmed": {"opt_out": Deed(("set_opt_out", "record:opt_out"))},
    "utter_complaint": {"complain": Deed(("record:complaint",))},
    "utter_legal_threat_noted": {"_legal_threat": Deed(("record:legal_threat",))},
    "utter_wrong_number": {"wrong_number": Deed(("mark_wrong_number", "record:wrong_number"))},
}

KNOWN_GAPS: dict[str, tuple[set[str], str]] = {
    # Nothing transfers the conversation to a person yet: `_handoff` records a `handoff` outcome (with a summary)
    # and sets `handoff_requested`; the live transfer is another issue. Do not change the handoff flow here.
    "utter_handoff": ({"handle_affirm", "_handoff"}, "no live transfer to a person yet (handoff recorded only)"),
    "utter_crisis_support": ({"_crisis"}, "the person it asks for is the same recorded handoff"),
    # Recorded as a `callback` outcome for agents (campaigns/money.py counts it as a person's case); no dialer
    # calls back on that date yet.
    "utter_callback_recorded": ({"_callback"}, "no dialer schedules the call back yet"),
}


# --- reading the domain ------------------------------------------------------------------------------------------
def _statements(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。！？])\s*", text) if s and not s.rstrip().endswith(("?", "？"))]


def claiming_responses() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, variations in DOMAIN["responses"].items():
        for variation in variations:
            for sentence in _statements(variation.get("text") or ""):
                if any(p.search(sentence) for p in CLAIMS):
                    found.setdefault(name, []).append(sentence)
    return found


# --- reading the actions -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Said:
    response: str
    function: str
    path: Path
    node: ast.Call
    ifs: tuple[ast.If, ...]  # the `if`s whose body holds the call, innermost last


def _names(expr: ast.expr) -> set[str] | None:
    """The response names a say() argument can be: a literal, either side of a conditional, or
    deescalation._private(turn, "x") (x or x_unverified). None: not resolvable."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        a, b = _names(expr.body), _names(expr.orelse)
        return None if a is None or b is None else a | b
    if isinstance(expr, ast.Call) and _callee(expr) == "_private" and len(expr.args) == 2:
        inner = _names(expr.args[1])
        return None if inner is None else inner | {f"{n}_unverified" for n in inner}
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _walk(node: ast.AST, ifs: tuple[ast.If, ...] = ()):  # noqa: ANN202 - a generator of (node, enclosing ifs)
    yield node, ifs
    for name, value in ast.iter_fields(node):
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, ast.AST):
                inside = ifs + (node,) if isinstance(node, ast.If) and name == "body" else ifs
                yield from _walk(child, inside)


def _functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


TREES = {path: ast.parse(path.read_text(encoding="utf-8")) for path in ACTIONS}


def says() -> tuple[list[Said], list[tuple[Path, ast.Call]]]:
    """Every say() in the action code, resolved; and the say() calls whose response name could not be read."""
    found, unresolved = [], []
    for path, tree in TREES.items():
        for function in _functions(tree):
            for node, ifs in _walk(function):
                if not (isinstance(node, ast.Call) and _callee(node) == "say" and node.args):
                    continue
                if _enclosing_function(tree, node) is not function:
                    continue  # a nested function: counted under its own name
                names = _names(node.args[0])
                if names is None:
                    unresolved.append((path, node))
                    continue
                found += [Said(name, function.name, path, node, ifs) for name in names]
    return found, unresolved


def _enclosing_function(tree: ast.Module, target: ast.AST) -> ast.FunctionDef | None:
    best = None
    for function in _functions(tree):
        if any(n is target for n in ast.walk(function)) and (best is None or function.lineno > best.lineno):
            best = function
    return best


def _is_deed(call: ast.Call, deed: str) -> bool:
    if deed.startswith("record:"):
        kind = deed.partition(":")[2]
        if _callee(call) not in ("_record", "record") or len(call.args) < 2:
            return False
        arg = call.args[1]
        return (isinstance(arg, ast.Constant) and arg.value == kind) or (isinstance(arg, ast.Name) and arg.id == kind)
    return _callee(call) == deed


def _requires(test: ast.expr, guard: str) -> bool:
    """Whether an `if` on `test` runs its body only when `guard` holds: the guard itself, or one of an `and`."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_requires(value, guard) for value in test.values)
    return ast.unparse(test) == guard


def _before(a: ast.AST, b: ast.AST) -> bool:
    return (a.lineno, a.col_offset) < (b.lineno, b.col_offset)


SAID, UNRESOLVED = says()


# --- the checks ----------------------------------------------------------------------------------------------------
def test_every_claiming_response_has_an_entry() -> None:
    claims = claiming_responses()
    missing = {name: sentences for name, sentences in claims.items() if name not in DEEDS and name not in KNOWN_GAPS}
    assert not missing, ("these responses say something was done: add each to DEEDS (the call that does it, said "
                         f"after it) or, if nothing does it yet, to KNOWN_GAPS with the reason: {missing}")
    stale = sorted((set(DEEDS) | set(KNOWN_GAPS)) - set(claims))
    assert not stale, f"entries for responses that claim nothing (or no longer exist): {stale}"
    assert not set(DEEDS) & set(KNOWN_GAPS)


def test_the_claim_patterns_see_what_they_should() -> None:
    claims = claiming_responses()
    assert {"utter_payment_link_sent", "utter_partial_recorded", "utter_handoff", "utter_dispute_opened"} <= set(claims)
    # the honest failures and the offers of a person are not claims
    for name in ("utter_payment_link_failed", "utter_partial_link_failed", "utter_partial_too_much",
                 "utter_confirm_partial", "utter_hardship", "utter_hardship_no_plan", "utter_help", "utter_iamabot"):
        assert name not in claims, (name, claims.get(name))


def test_no_response_name_escapes_the_reading() -> None:
    """A say() whose response cannot be read must not be able to say a claim (only _ask_factor builds its name)."""
    claims = set(claiming_responses())
    for path, node in UNRESOLVED:
        function = _enclosing_function(TREES[path], node)
        assert function is not None
        source = ast.get_source_segment(path.read_text(encoding="utf-8"), function) or ""
        assert not any(name in source for name in claims), (path.name, node.lineno, function.name)
    # every mention of a claiming response in the action code is a say() the test has read
    literal = {(p, n.lineno) for p, t in TREES.items() for n in ast.walk(t)
               if isinstance(n, ast.Constant) and n.value in claims}
    read = {(s.path, line) for s in SAID if s.response in claims
            for line in range(s.node.lineno, (s.node.end_lineno or s.node.lineno) + 1)}
    assert literal <= read, sorted(literal - read)


def test_no_rule_or_story_utters_a_claim_directly() -> None:
    claims = set(claiming_responses())
    for path in RASA_DATA:
        text = path.read_text(encoding="utf-8")
        used = {name for name in claims if re.search(rf"\baction:\s*{name}\b", text)}
        assert not used, f"{path.name} utters {used} without the action that does it"


@pytest.mark.parametrize("response", sorted(DEEDS))
def test_each_claim_is_said_only_after_its_deed(response: str) -> None:
    where = DEEDS[response]
    said = [s for s in SAID if s.response == response]
    assert said, f"{response} is never said by the action code: remove its entry"
    assert {s.function for s in said} <= set(where), (
        f"{response} said in {sorted({s.function for s in said} - set(where))}: add the function and its deed")
    assert set(where) <= {s.function for s in said}, f"{response}: an entry names a function that no longer says it"
    for s in said:
        deed = where[s.function]
        function = next(f for f in _functions(TREES[s.path]) if f.name == s.function)
        calls = [n for n in ast.walk(function) if isinstance(n, ast.Call)]
        for wanted in deed.calls:
            assert any(_is_deed(c, wanted) and _before(c, s.node) for c in calls), (
                f"{s.path.name}:{s.node.lineno} says {response} without {wanted}(...) before it in {s.function}")
        if deed.guard is not None:
            assert any(_requires(i.test, deed.guard) for i in s.ifs), (
                f"{s.path.name}:{s.node.lineno} says {response} outside an `if` on {deed.guard!r}: "
                f"{[ast.unparse(i.test) for i in s.ifs]}")


@pytest.mark.parametrize("response", sorted(KNOWN_GAPS))
def test_known_gaps_are_said_only_where_listed(response: str) -> None:
    functions, _reason = KNOWN_GAPS[response]
    said = {s.function for s in SAID if s.response == response}
    assert said == functions, f"{response} is said in {sorted(said)}, listed: {sorted(functions)}"


def test_the_link_is_reported_sent_only_from_what_the_sender_returned() -> None:
    """payments/notify.py: the Delivery that says `sent` is built only from SmsSender.send's own result."""
    tree = ast.parse((PROJECT_ROOT / "payments" / "notify.py").read_text(encoding="utf-8"))
    text_link = next(f for f in _functions(tree) if f.name == "text_link")
    send = [n for n in ast.walk(text_link) if isinstance(n, ast.Call) and _callee(n) == "send"]
    sent = [n for n in ast.walk(text_link) if isinstance(n, ast.Call) and _callee(n) == "Delivery"
            and n.args and isinstance(n.args[0], ast.Constant) and n.args[0].value is True]
    assert len(send) == 1 and len(sent) == 1 and _before(send[0], sent[0])
    refusals = [n for n in ast.walk(text_link) if isinstance(n, ast.If) and "result.sent" in ast.unparse(n.test)]
    assert refusals and _before(refusals[0], sent[0])
