"""Rasa-process tuning that keeps Rasa's behaviour and removes measured waste.

Rasa 3.6 checks every custom-action response with `jsonschema.validate(result, spec)`, which first re-checks
the constant `spec` against the JSON-Schema meta-schema and builds a new validator, on every action call. Under
load that was 57% of the Rasa process's CPU (py-spy over `evaluation/bench_sms.py`). `install()` replaces the
check with one validator built (and its schema checked) once per process: the same validator class, the same
`best_match` error and the same message on invalid responses.

Rasa 3.6 also finds an event's class (`Event.resolve_by_type`, called for every event of every tracker read from
Redis, and the Redis tracker store reads the stored tracker again to merge it on save) by walking the whole
`Event` subclass tree and calling `inspect.isabstract` on each class: 39% of the Rasa process's CPU for a bot
with its trackers in Redis (py-spy over `evaluation/bench_rasa_floor.py`). `install()` keeps the first-match
table that walk produces, rebuilt whenever a new `Event` subclass is defined, and leaves every other case
(unknown names, Rasa's "topic" and default handling) to Rasa's own function.

Runs inside Rasa's environment (Python 3.10, no duebot imports); `evidence_broker` imports it, since Rasa loads
that module at start-up for every model (endpoints.yml).
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    spec = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(spec)
    cls.check_schema(spec)  # once: the spec is a constant of Rasa's
    validator = cls(spec)

    def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        error: ValidationError | None = exceptions.best_match(validator.iter_errors(result))
        if error is not None:
            error.message += (  # Rasa's own wording
                ". Failed to validate Action server response from API, "
                "make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
            )
            raise error
        return True

    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    _cache_event_types()
    _installed = True


def _cache_event_types() -> None:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    rasa_resolve = Event.resolve_by_type
    by_name: dict[str, type] = {}

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        if not by_name:
            for cls in all_subclasses(Event):  # Rasa's order, so the first class with a name wins, as in Rasa
                by_name.setdefault(cls.type_name, cls)
        found = by_name.get(type_name)
        return found if found is not None else rasa_resolve(type_name, default)

    parent_hook = Event.__dict__.get("__init_subclass__")

    def forget_on_new_subclass(cls: type, **kwargs: Any) -> None:
        by_name.clear()  # a class defined later (a custom event) may change what a name resolves to
        if parent_hook is not None:
            parent_hook.__func__(cls, **kwargs)
        else:
            super(Event, cls).__init_subclass__(**kwargs)

    Event.__init_subclass__ = classmethod(forget_on_new_subclass)  # type: ignore[method-assign,assignment]
    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign,assignment]
