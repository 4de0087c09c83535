from __future__ import annotations

from pathlib import Path

import pytest

from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import Outcome, Turn


def fill(log: EvidenceLog, conv: str = "conv-1", pack: str = "us") -> None:
    log.append("conversation", {"pack": pack, "channel": "voice"}, conversation_id=conv)
    log.record(Turn(conv, "bot", "voice", "2025-01-01T10:00:00Z", "2025-01-01T10:00:04Z",
                    text="Thank you for confirming your identity. This is a communication from a debt collector.",
                    audio=b"RIFF-audio-1" * 10,
                    legal_elements=("identity_confirmed",)))
    log.record(Turn(conv, "bot", "voice", "2025-01-01T10:00:05Z", "2025-01-01T10:00:09Z",
                    text="Your overdue balance is $120.50, payable by 2025-02-01.",
                    audio=b"RIFF-audio-2" * 10,
                    asr_confidence=None, emotion_score=0.1))
    log.record(Turn(conv, "debtor", "voice", "2025-01-01T10:00:10Z", "2025-01-01T10:00:12Z",
                    text="OK, I will pay.",
                    asr_confidence=0.87, emotion_score=0.3))
    log.record(Outcome(conv, "promise", amount="120.50", currency="USD", due_date="2025-02-01"))
    log.append("gate_decision", {"decision": "allow", "rule": "contact_hours"})  # no conversation


@pytest.fixture
def evdir(tmp_path: Path) -> Path:
    d = tmp_path / "evidence"
    with EvidenceLog.open(d) as log:
        fill(log)
        log.checkpoint()
        fill(log, "conv-2", pack="cn")
    return d
