"""Simultaneous calls without audio underrun: N sessions in one process, each with a caller speaking every
few seconds (real Whisper + Piper + a REST dialogue), bot audio paced at 20 ms like a carrier consumes it.

Underrun = a 20 ms bot frame handed to the carrier more than one frame period late. The carrier side is in
memory (no per-call RTP threads), so this measures the pipeline's own capacity.

    .venv/bin/python evaluation/bench_voice_capacity.py [--calls 10 20 30] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "evaluation")]

from _machine import describe  # noqa: E402
from _stats import percentile  # noqa: E402

from duebot.voice.asr import WhisperEngine  # noqa: E402
from duebot.voice.dialogue import RasaRestDialogue  # noqa: E402
from duebot.voice.evidence import MemoryEvidenceSink  # noqa: E402
from duebot.voice.session import CallSession, VoiceConfig  # noqa: E402
from duebot.voice.tts import PiperTts  # noqa: E402
from tests.voice.conftest import flite_pcm  # noqa: E402
from tests.voice.line import CallerLine, MemoryTransport  # noqa: E402
from tests.voice.scripted_dialogue import ScriptedRasa  # noqa: E402

PHRASES = ["I can pay next week", "Can you call me later", "What is this about", "I need more time"]


async def level(n: int, seconds: float, asr: WhisperEngine, tts: PiperTts, url: str) -> dict[str, float]:
    dialogue = RasaRestDialogue(url)
    speech = [flite_pcm(p) for p in PHRASES]
    sessions = [CallSession(f"cap-{n}-{i}", MemoryTransport(), asr, tts, dialogue, MemoryEvidenceSink(),
                            VoiceConfig(start_message="/short")) for i in range(n)]

    async def caller(i: int, session: CallSession) -> None:
        async with CallerLine(session) as line:
            await asyncio.sleep(2.0 + 4.0 * i / n)  # stagger the calls' turns
            end = time.monotonic() + seconds
            k = 0
            while time.monotonic() < end:
                await line.say(speech[(i + k) % len(speech)])
                k += 1
                await asyncio.sleep(4.0)
            session.remote_hangup()

    runs = [asyncio.create_task(s.run()) for s in sessions]
    await asyncio.gather(*(caller(i, s) for i, s in enumerate(sessions)))
    await asyncio.wait(runs, timeout=30)
    await dialogue.aclose()
    late = sum(s.player.late_frames for s in sessions)
    sent = sum(s.player.frames_sent for s in sessions)
    lat = [t.latency * 1000 for s in sessions for t in s.turns if t.speaker == "bot" and t.latency is not None]
    return {"late": late, "sent": sent, "turns": len(lat), "p50": percentile(lat, 0.5), "p95": percentile(lat, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    print(describe())
    asr, tts = WhisperEngine(workers=2), PiperTts()
    with ScriptedRasa() as scripted:
        for n in args.calls:
            r = asyncio.run(level(n, args.seconds, asr, tts, scripted.url))
            print(f"{n:3d} calls: bot frames late {int(r['late'])} of {int(r['sent'])} "
                  f"({100 * r['late'] / max(r['sent'], 1):.2f} %), {int(r['turns'])} turns, "
                  f"turn latency p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms")


if __name__ == "__main__":
    main()
