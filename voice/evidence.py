"""Where call turns go: an injected sink with the evidence log's `append(kind, body, payloads)` signature."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol


class EvidenceSink(Protocol):
    def append(self, kind: str, body: dict[str, Any], payloads: dict[str, bytes] | None = None) -> Any: ...


@dataclass
class MemoryEvidenceSink:
    """In-memory sink for tests and for running without an evidence log."""

    records: list[tuple[str, dict[str, Any], dict[str, bytes]]] = field(default_factory=list)

    def append(self, kind: str, body: dict[str, Any], payloads: dict[str, bytes] | None = None) -> int:
        self.records.append((kind, body, dict(payloads or {})))
        return len(self.records) - 1

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        return [body for k, body, _ in self.records if k == kind]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class InboxEvidenceSink:
    """Voice records into the evidence log through its Redis inbox (duebot/evidence/inbox.py), kinds and payload
    names as the pipeline spells them (voice/recorder.py: the log's own). The Rasa sender id of the call is the
    conversation id, so QA sees the audio next to the transcript turns Rasa's event broker records."""

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox

    def append(self, kind: str, body: dict[str, Any], payloads: dict[str, bytes] | None = None) -> Any:
        conversation_id = body.get("sender") or body.get("call_id")
        return self.inbox.submit(kind, body, conversation_id=conversation_id, payloads=payloads)
