# Rasa's graph validator reads these signatures with typing_utils: keep Rasa's own typing style (List, Dict).
# ruff: noqa: UP006, UP035, UP019, UP045
"""Rasa NLU components that attach the emotion of each message, from duebot's emotion service.

Runs inside Rasa's environment (Python 3.10, no torch, no duebot imports): the model itself lives in the
emotion service (`duebot emotion serve`, started by `duebot serve` before Rasa, which passes its URL in
DUEBOT_EMOTION_URL). The result lands in the parse data as `emotion`, so `/model/parse` returns it, the tracker
keeps it in the user event (bot/actions/deescalation.py reads it) and the evidence broker copies it into the
turn record. If the service does not answer within the timeout the message simply has no emotion: parsing must
never fail or stall because of it.

Two pipeline entries share one client: `EmotionPrefetch`, first in the pipeline, sends the text to the service
and returns at once; `EmotionComponent`, after the classifiers, collects the answer. The service encodes on the
other core while Rasa's own featurizers and DIET run, so the emotion costs a turn little more than the wait for
whichever finishes last. Without the prefetch entry, `EmotionComponent` asks the service itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
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
FIELDS = ("label", "score", "scores", "negative", "legal_threat")
DEFAULTS: Dict[Text, Any] = {
    "url": None,  # default: $DUEBOT_EMOTION_URL (+ /emotion)
    "timeout": 0.5,  # seconds; a turn must not wait longer than this for its emotion
    "retry_after": 10.0,  # seconds to skip the service after a failure, so a dead one costs nothing
}


class EmotionClient:
    """Requests in flight by text (the emotion is a function of the text alone), on a small thread pool."""

    def __init__(self, config: Dict[Text, Any]) -> None:
        base = config.get("url") or os.environ.get("DUEBOT_EMOTION_URL") or ""
        self.url = f"{base.rstrip('/')}/emotion" if base and not base.rstrip("/").endswith("/emotion") else base
        self.timeout = float(config.get("timeout", 0.5))
        self.retry_after = float(config.get("retry_after", 10.0))
        self.down_until = 0.0
        self._local = threading.local()  # requests.Session is not thread-safe: one keep-alive session per thread
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="emotion")
        self._inflight: Dict[Text, Future[Optional[Dict[Text, Any]]]] = {}
        self._lock = threading.Lock()
        if not self.url:
            logger.warning("DUEBOT_EMOTION_URL is not set: messages get no emotion")

    def _usable(self, text: str) -> bool:
        return bool(self.url and text) and time.monotonic() >= self.down_until

    def _fetch(self, text: str) -> Optional[Dict[Text, Any]]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            response = session.post(self.url, json={"text": text}, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            self._failed(exc)
            return None
        return {key: data.get(key) for key in FIELDS}

    def _failed(self, exc: object) -> None:
        self.down_until = time.monotonic() + self.retry_after
        logger.warning("emotion service at %s failed (%s): no emotion for %.0f s", self.url, exc, self.retry_after)

    def start(self, text: str) -> None:
        if not self._usable(text):
            return
        with self._lock:
            if text not in self._inflight:
                self._inflight[text] = self._pool.submit(self._fetch, text)

    def result(self, text: str) -> Optional[Dict[Text, Any]]:
        with self._lock:
            future = self._inflight.pop(text, None)
        if future is None:
            return self._fetch(text) if self._usable(text) else None
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            self._failed(f"no answer within {self.timeout} s")
            return None


_clients: Dict[Text, EmotionClient] = {}
_clients_lock = threading.Lock()


def client_for(config: Dict[Text, Any]) -> EmotionClient:
    """One client per (url, timeout, retry_after) in a Rasa process: the prefetch and the collector share it."""
    key = repr(sorted((k, config.get(k)) for k in DEFAULTS))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = EmotionClient(config)
        return _clients[key]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class EmotionPrefetch(GraphComponent):
    """First in the pipeline: asks the emotion service now, so the answer is ready by the time it is read."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return dict(DEFAULTS)

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.client = client_for(config)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> EmotionPrefetch:
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self.client.start(message.get(TEXT) or "")
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class EmotionComponent(GraphComponent):
    """Sets message data `emotion` = {label, score, scores, negative, legal_threat} or leaves it unset."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return dict(DEFAULTS)

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.client = client_for(config)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> EmotionComponent:
        return cls(config)

    def emotion(self, text: str) -> Optional[Dict[Text, Any]]:
        return self.client.result(text)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            result = self.emotion(message.get(TEXT) or "")
            if result is not None:
                message.set(EMOTION, result, add_to_output=True)
        return messages
