"""Turn latency on loopback SIP: the caller's end of speech → the bot's first audio frame handed to RTP.

baresip (caller, flite voice) → kamailio → duebot (rfcvoip, Whisper tiny.en, Piper); a scripted REST bot
answers each turn with a short sentence, so the figure is the voice pipeline's, not Rasa's.

    .venv/bin/python evaluation/bench_voice_latency.py [--turns 55] [--rasa-url http://127.0.0.1:5005]
    .venv/bin/python evaluation/bench_voice_latency.py --no-speculation   # baseline: ASR only at end of speech
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "evaluation")]

from _machine import describe, percentile  # noqa: E402

from duebot.channels.sip import SipAgent, SipConfig  # noqa: E402
from duebot.processes import stop  # noqa: E402
from duebot.voice.asr import WhisperEngine  # noqa: E402
from duebot.voice.audio import wav_bytes  # noqa: E402
from duebot.voice.dialogue import RasaRestDialogue  # noqa: E402
from duebot.voice.evidence import MemoryEvidenceSink  # noqa: E402
from duebot.voice.runtime import VoiceRuntime  # noqa: E402
from duebot.voice.session import VoiceConfig  # noqa: E402
from duebot.voice.tts import PiperTts  # noqa: E402
from duebot.voice.vad import EndpointerConfig  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.voice.conftest import flite_pcm  # noqa: E402
from tests.voice.scripted_dialogue import ScriptedRasa  # noqa: E402
from tests.voice.sip_peers import Baresip, start_kamailio  # noqa: E402

PHRASES = ["I can pay next week", "Can you call me later", "What is this about", "I need more time",
           "My husband pays the bills", "I am at work right now"]
GAP = 4.5  # seconds between the starts of caller utterances: room for ASR + reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=55)
    parser.add_argument("--rasa-url", default=None, help="use a running Rasa instead of the scripted bot")
    parser.add_argument("--no-speculation", action="store_true",
                        help="recognise only after end of speech (the baseline for speculative recognition)")
    args = parser.parse_args()
    print(describe())

    with tempfile.TemporaryDirectory() as tmp, ScriptedRasa() as scripted:
        workdir = Path(tmp)
        pcm = bytearray(b"\x00\x00" * 8000 * 3)
        for i in range(args.turns):
            pcm += flite_pcm(PHRASES[i % len(PHRASES)], voice=["slt", "rms", "awb", "kal16"][i % 4])
            target = int((3 + (i + 1) * GAP) * 16000)
            pcm += b"\x00" * max(0, target - len(pcm))
        pcm += b"\x00\x00" * 8000 * 5
        source = workdir / "caller.wav"
        source.write_bytes(wav_bytes(bytes(pcm)))

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        kamailio, port = start_kamailio(workdir)
        runtime = VoiceRuntime(WhisperEngine(workers=2), PiperTts(),
                               RasaRestDialogue(args.rasa_url or scripted.url), MemoryEvidenceSink(),
                               VoiceConfig(start_message="/short",
                                           endpointer=EndpointerConfig(pause_silence=None) if args.no_speculation
                                           else EndpointerConfig()))
        rtp = free_port() // 2 * 2
        agent = SipAgent(SipConfig("127.0.0.1", port, "duebot", "none", local_port=free_port(), rtp_low=rtp,
                                   rtp_high=rtp + 20), runtime, loop)
        phone = Baresip(workdir, port, source)
        try:
            agent.start()
            phone.start()
            phone.wait_registered()
            phone.command("dial", f"sip:duebot@127.0.0.1:{port}")
            phone.wait_event("CALL_ESTABLISHED", timeout=15)
            deadline = time.monotonic() + len(pcm) / 16000 + 10
            while time.monotonic() < deadline:
                time.sleep(0.5)
                sessions = list(agent.sessions.values())
                if sessions and sum(t.latency is not None for t in sessions[0].turns) >= args.turns:
                    break
            phone.command("hangup")
            time.sleep(1)
        finally:
            phone.stop()
            agent.stop()
            stop(kamailio, grace=3)
            loop.call_soon_threadsafe(loop.stop)
    session = next(iter(agent.sessions.values()))
    latencies = [t.latency * 1000 for t in session.turns if t.speaker == "bot" and t.latency is not None]
    heard = [t for t in session.turns if t.speaker == "caller"]
    print(f"loopback SIP, {len(latencies)} turns ({len(heard)} caller utterances recognised): turn latency "
          f"p50 {percentile(latencies, 0.5):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms, "
          f"min {min(latencies):.0f} ms, max {max(latencies):.0f} ms "
          f"(includes {runtime.config.endpointer.end_silence * 1000:.0f} ms end-of-speech silence)")
    print(f"bot audio frames sent late (underrun): {session.player.late_frames} of {session.player.frames_sent}")
    print(f"speculative recognition from {runtime.config.endpointer.pause_silence} s pauses: "
          f"{session.speculation_hits} used, {session.speculation_misses} dropped (the caller went on)")


if __name__ == "__main__":
    main()
