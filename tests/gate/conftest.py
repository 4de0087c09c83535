"""Request builders shared by the gate tests."""

from __future__ import annotations

from typing import Any

import pytest

from duebot.policies.audit import MemoryAuditSink

DROP = object()  # pass as a value to leave the field out of the request


def request(now: str, *, channel: str = "voice", purpose: str = "collection", to: Any = "+14155550100",
            debt_id: Any = "D-1", ai_voice: Any = True, timezone: Any = "America/Los_Angeles",
            line_type: Any = "mobile", consent: Any = None, opted_out: Any = False, dispute_open: Any = False,
            history: Any = DROP, subscriber_id: str = "S-1", text: Any = DROP) -> dict[str, Any]:
    contact = {"channel": channel, "purpose": purpose, "to": to, "debt_id": debt_id, "ai_voice": ai_voice,
               "text": text}
    subscriber = {"id": subscriber_id, "timezone": timezone, "line_type": line_type,
                  "consent": {"ai_voice": True, "sms": True} if consent is None else consent,
                  "opted_out": opted_out, "dispute_open": dispute_open}
    out = {"now": now, "contact": {k: v for k, v in contact.items() if v is not DROP},
           "subscriber": {k: v for k, v in subscriber.items() if v is not DROP}, "history": history}
    return {k: v for k, v in out.items() if v is not DROP}


def entry(at: str, channel: str = "voice", purpose: str = "collection", debt_id: str | None = "D-1",
          outcome: str = "no_answer") -> dict[str, Any]:
    out = {"at": at, "channel": channel, "purpose": purpose, "outcome": outcome}
    if debt_id is not None:
        out["debt_id"] = debt_id
    return out


@pytest.fixture
def memory_sink() -> MemoryAuditSink:
    return MemoryAuditSink()
