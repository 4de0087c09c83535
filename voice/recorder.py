"""The call's record for QA: every turn (text, timing, its audio) and the whole call, both directions.

Records carry the evidence log's own kind and payload names (evidence/records.py), so a sink passes them on as
they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from duebot.voice.audio import ulaw_to_pcm, wav_bytes
from duebot.voice.evidence import EvidenceSink, sha256
from duebot.voice.player import Player, Utterance

VOICE_TURN, VOICE_CALL, VOICE_VOICEMAIL = "voice_turn", "voice_call", "voice_voicemail"


@dataclass
class TurnRecord:
    speaker: Literal["caller", "bot"]
    text: str
    started_at: float
    ended_at: float
    channel_input: str = "speech"
    asr_confidence: float | None = None
    latency: float | None = None  # caller's end of speech → first bot frame on the wire
    interrupted: bool = False
    audio_sha256: str = ""


class CallRecorder:
    def __init__(self, evidence: EvidenceSink, call_id: str, sender: str, direction: str,
                 clock: Callable[[], float]) -> None:
        self.evidence = evidence
        self.call_id = call_id
        self.sender = sender
        self.direction = direction
        self.clock = clock
        self.started_at = clock()
        self.turns: list[TurnRecord] = []
        self.caller_audio = bytearray()  # everything the line carried from the caller, 8 kHz 16-bit PCM

    def caller(self, text: str, channel_input: str, confidence: float | None, pcm: bytes | None,
               t_start: float, t_end: float, *, amd: bool = False) -> None:
        audio = wav_bytes(pcm) if pcm else b""
        turn = TurnRecord("caller", text, t_start, t_end, channel_input, confidence,
                          audio_sha256=sha256(audio) if audio else "")
        self.turns.append(turn)
        self._append_turn(turn, audio, extra={"amd": True} if amd else {})

    def bot(self, utterance: Utterance, eos: float | None) -> None:
        """`eos`: the end of the caller speech this utterance answers, for the latency."""
        audio = wav_bytes(bytes(utterance.pcm)) if utterance.pcm else b""
        started = utterance.first_frame_at or self.clock()
        latency = started - eos if eos is not None and utterance.first_frame_at else None
        turn = TurnRecord("bot", utterance.text, started, utterance.last_frame_at or started, "speech", None, latency,
                          utterance.interrupted, sha256(audio) if audio else "")
        self.turns.append(turn)
        self._append_turn(turn, audio, extra={"uninterruptible": utterance.uninterruptible})

    def _append_turn(self, turn: TurnRecord, audio: bytes, extra: dict[str, Any]) -> None:
        body = {"call_id": self.call_id, "sender": self.sender, "direction": self.direction,
                "speaker": turn.speaker, "text": turn.text, "input": turn.channel_input,
                "started_at": round(turn.started_at - self.started_at, 3),
                "ended_at": round(turn.ended_at - self.started_at, 3),
                "asr_confidence": None if turn.asr_confidence is None else round(turn.asr_confidence, 3),
                "latency_ms": None if turn.latency is None else round(turn.latency * 1000, 1),
                "interrupted": turn.interrupted, "audio_sha256": turn.audio_sha256, **extra}
        self.evidence.append(VOICE_TURN, body, {"audio_wav": audio} if audio else None)

    def voicemail(self, message: str) -> None:
        self.evidence.append(VOICE_VOICEMAIL, {"call_id": self.call_id, "message": message})

    def call(self, player: Player, *, answered_by: str | None, end_reason: str, dtmf: str, interruptions: int,
             error: str | None) -> None:
        """The whole call (bot audio placed at the time it went out); `error`: the code of a stage that failed."""
        caller = bytes(self.caller_audio)
        bot = bytearray()
        if player.sent_log:
            t0 = player.sent_log[0][0]
            for t, ulaw in player.sent_log:
                offset = max(0, round((t - t0) * 8000)) * 2
                if offset > len(bot):
                    bot += b"\x00" * (offset - len(bot))
                bot[offset:offset + len(ulaw) * 2] = ulaw_to_pcm(ulaw)
        payloads = {"caller_wav": wav_bytes(caller), "bot_wav": wav_bytes(bytes(bot))}
        self.evidence.append(VOICE_CALL, {
            "call_id": self.call_id, "sender": self.sender, "direction": self.direction,
            "answered_by": answered_by, "end_reason": end_reason, "error": error,
            "duration_s": round(self.clock() - self.started_at, 3), "dtmf": dtmf,
            "interruptions": interruptions, "late_frames": player.late_frames,
            "caller_audio_sha256": sha256(payloads["caller_wav"]), "bot_audio_sha256": sha256(payloads["bot_wav"]),
        }, payloads)
