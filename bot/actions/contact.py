"""Actions that change how and whether duebot may contact the subscriber."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionOptOut(Action):
    """Honour an opt-out at once: the slot travels with the conversation to every channel adapter."""

    def name(self) -> str:
        return "action_opt_out"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_opt_out_confirmed")
        return [SlotSet("opted_out", True)]


class ActionRequestHuman(Action):
    """Hand the conversation to a person and mark it so the bot stops steering it."""

    def name(self) -> str:
        return "action_request_human"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_handoff")
        return [SlotSet("handoff_requested", True)]
