"""Rasa-process tuning that keeps Rasa's behaviour and removes measured waste.

Rasa 3.6 checks every custom-action response with `jsonschema.validate(result, spec)`, which first re-checks
the constant `spec` against the JSON-Schema meta-schema and builds a new validator, on every action call. Under
load that was 57% of the Rasa process's CPU (py-spy over `evaluation/bench_sms.py`). `install()` replaces the
check with one validator built (and its schema checked) once per process: the same validator class, the same
`best_match` error and the same message on invalid responses.

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
    _installed = True
