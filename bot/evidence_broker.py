"""A Rasa event broker that turns every user and bot message into an evidence `turn` record.

Runs inside Rasa's own environment (Python 3.10, no duebot imports): it writes the evidence inbox's wire
format to the Redis Stream that `duebot evidence writer` drains (duebot/evidence/inbox.py documents it):
fields rid, kind, conversation_id, body (JSON), p:text (the message text, stored apart as a payload).
Configured in endpoints.yml as `event_broker: {type: evidence_broker.EvidenceBroker, ...}`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

import rasa_speedups
import redis
from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

rasa_speedups.install()  # Rasa loads this module at start-up for every model: the place for process tuning

logger = logging.getLogger(__name__)
STREAM = "duebot:evidence:inbox"
SPEAKERS = {"user": "debtor", "bot": "bot"}


def _iso(timestamp: float) -> str:
    # Rasa's environment is Python 3.10: no dt.UTC there
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: UP017


def turn_fields(event: dict[str, Any]) -> dict[str, Any] | None:
    """The stream entry for one Rasa event, or None when the event is not a message."""
    speaker = SPEAKERS.get(event.get("event", ""))
    if speaker is None or not event.get("sender_id"):
        return None
    metadata = event.get("metadata") or {}
    data = event.get("data") or {}
    custom = data.get("custom") or {}
    at = _iso(float(event.get("timestamp") or 0))
    body: dict[str, Any] = {
        "speaker": speaker,
        "channel": metadata.get("channel") or event.get("input_channel") or "rest",
        "started_at": metadata.get("started_at") or at,
        "ended_at": metadata.get("ended_at") or at,
        "asr_confidence": metadata.get("asr_confidence"),
        "emotion_score": metadata.get("emotion_score"),
        "legal_elements": list(custom.get("legal_elements") or []),
    }
    if speaker == "debtor":
        intent = (event.get("parse_data") or {}).get("intent") or {}
        body["intent"] = intent.get("name")
        body["intent_confidence"] = intent.get("confidence")
        _add_emotion(body, metadata, event.get("parse_data") or {})
        if metadata.get("audio_sha256"):
            body["audio_sha256"] = metadata["audio_sha256"]
    fields: dict[str, Any] = {
        "rid": uuid.uuid4().hex,
        "kind": "turn",
        "conversation_id": event["sender_id"],
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
    }
    if event.get("text"):
        fields["p:text"] = event["text"].encode("utf-8")
    return fields


def _add_emotion(body: dict[str, Any], metadata: dict[str, Any], parse_data: dict[str, Any]) -> None:
    """Issue 11: the emotion NLU component's result (parse_data["emotion"]) for QA, unless the channel already
    measured one (metadata emotion_score, e.g. from voice)."""
    emotion = parse_data.get("emotion")
    if not isinstance(emotion, dict) or metadata.get("emotion_score") is not None:
        return
    body["emotion_score"] = emotion.get("negative")  # how negative the line is, 0..1, anger or distress
    body["emotion_label"] = emotion.get("label")
    body["legal_threat"] = bool(emotion.get("legal_threat"))


class EvidenceBroker(EventBroker):
    def __init__(self, client: redis.Redis, stream: str = STREAM) -> None:
        self.client = client
        self.stream = stream

    @classmethod
    async def from_endpoint_config(cls, broker_config: EndpointConfig,
                                   event_loop: Any = None) -> EvidenceBroker:
        kwargs = broker_config.kwargs
        client = redis.Redis(host=broker_config.url, port=int(kwargs.get("port") or 6379),
                             db=int(kwargs.get("db") or 0), password=kwargs.get("password") or None)
        return cls(client, kwargs.get("stream") or STREAM)

    def publish(self, event: dict[str, Any]) -> None:
        fields = turn_fields(event)
        if fields is None:
            return
        # A lost turn is lost evidence: let the error reach Rasa's log rather than hide it.
        self.client.xadd(self.stream, fields)

    def is_ready(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    async def close(self) -> None:
        self.client.close()
