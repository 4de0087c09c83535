# Rasa's graph validator reads these signatures with typing_utils: keep Rasa's own typing style (List, Dict).
# ruff: noqa: UP006, UP035, UP019, UP045
"""A Rasa NLU component that attaches the emotion of each message, from duebot's emotion service.

Runs inside Rasa's environment (Python 3.10, no torch, no duebot imports): the model itself lives in the
emotion service (`duebot emotion serve`, started by `duebot serve` before Rasa, which passes its URL in
DUEBOT_EMOTION_URL). The result lands in the parse data as `emotion`, so `/model/parse` returns it, the tracker
keeps it in the user event (bot/actions/deescalation.py reads it) and the evidence broker copies it into the
turn record. If the service does not answer within the timeout the message simply has no emotion: parsing must
never fail or stall because of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional, Text

import requests
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

logger = logging.getLogger(__name__)
EMOTION = "emotion"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class EmotionComponent(GraphComponent):
    """Sets message data `emotion` = {label, score, scores, negative, legal_threat} or leaves it unset."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "url": None,  # default: $DUEBOT_EMOTION_URL (+ /emotion)
            "timeout": 0.5,  # seconds; a turn must not wait longer than this for its emotion
            "retry_after": 10.0,  # seconds to skip the service after a failure, so a dead one costs nothing
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        base = config.get("url") or os.environ.get("DUEBOT_EMOTION_URL") or ""
        self.url = f"{base.rstrip('/')}/emotion" if base and not base.rstrip("/").endswith("/emotion") else base
        self.timeout = float(config.get("timeout", 0.5))
        self.retry_after = float(config.get("retry_after", 10.0))
        self.session = requests.Session()  # keep-alive: no TCP handshake per turn
        self.down_until = 0.0
        if not self.url:
            logger.warning("DUEBOT_EMOTION_URL is not set: messages get no emotion")

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> EmotionComponent:
        return cls(config)

    def emotion(self, text: str) -> Optional[Dict[Text, Any]]:
        if not self.url or not text or time.monotonic() < self.down_until:
            return None
        try:
            response = self.session.post(self.url, json={"text": text}, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            self.down_until = time.monotonic() + self.retry_after
            logger.warning("emotion service at %s failed (%s): no emotion for %.0f s", self.url, exc,
                           self.retry_after)
            return None
        return {key: data.get(key) for key in ("label", "score", "scores", "negative", "legal_threat")}

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            result = self.emotion(message.get(TEXT) or "")
            if result is not None:
                message.set(EMOTION, result, add_to_output=True)
        return messages
