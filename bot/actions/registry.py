"""Actions register by decorator: one function per Rasa action name, wrapped in a rasa-sdk Action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from duebot.actions.turn import Turn

Handler = Callable[[Turn], None]
HANDLERS: dict[str, Handler] = {}


def action(name: str, *, unguarded: bool = False) -> Callable[[Handler], Handler]:
    """Register `handler` as Rasa action `name`. Every action passes the conduct guard (conversation.routed) unless
    registered `unguarded` (only the session start, which says nothing)."""

    def register(handler: Handler) -> Handler:
        if name in HANDLERS:
            raise ValueError(f"action {name} registered twice")
        if not unguarded and not getattr(handler, "guarded", False):
            raise ValueError(f"action {name} must pass the conduct guard: wrap it in conversation.routed")
        HANDLERS[name] = handler

        def run(self: Action, dispatcher: CollectingDispatcher, tracker: Tracker,
                domain: dict[str, Any]) -> list[dict[str, Any]]:
            turn = Turn.build(dispatcher, tracker)
            handler(turn)
            return turn.events

        # rasa-sdk discovers Action subclasses; one small class per registered name, reachable as a module
        # attribute because the action server's worker processes pickle it
        class_name = "".join(part.title() for part in name.split("_"))
        cls = type(class_name, (Action,), {"name": lambda self: name, "run": run, "__module__": __name__,
                                           "__qualname__": class_name})
        globals()[class_name] = cls
        return handler

    return register
