"""Turn latency on loopback SIP: the caller's end of speech → the bot's first audio frame handed to RTP.

baresip (caller, flite voice) → kamailio → duebot (rfcvoip, Whisper tiny.en, Piper); a scripted REST bot
answers each turn with a short sentence, so the figure is the voice pipeline's, not Rasa's.

    .venv/bin/python evaluation/bench_voice_latency.py [--turns 55] [--rasa-url http://127.0.0.1:5005]
    .venv/bin/python evaluation/bench_voice_latency.py --no-speculation   # baseline: ASR only at end of speech
    .venv/bin/python evaluation/bench_voice_latency.py --calls 20 --turns 8  # capacity over real SIP and RTP
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

from _machine import describe  # noqa: E402
from _stats import percentile  # noqa: E402

from duebot.channels.sip.channel import SipAgent, SipConfig  # noqa: E402
from duebot.processes import free_port, stop  # noqa: E402
from duebot.voice.asr import WhisperEngine  # noqa: E402
from duebot.voice.audio import wav_bytes  # noqa: E402
from duebot.voice.dialogue import RasaRestDialogue  # noqa: E402
from duebot.voice.evidence import MemoryEvidenceSink  # noqa: E402
from duebot.voice.runtime import VoiceRuntime  # noqa: E402
from duebot.voice.session import VoiceConfig  # noqa: E402
from duebot.voice.tts import PiperTts  # noqa: E402
from duebot.voice.vad import EndpointerConfig  # noqa: E402
from tests.voice.conftest import flite_pcm  # noqa: E402
from tests.voice.scripted_dialogue import ScriptedRasa  # noqa: E402
from tests.voice.sip_peers import Baresip, start_kamailio  # noqa: E402

PHRASES = ["I can pay next week", "Can you call me later", "What is this about", "I need more time",
           "My husband pays the bills", "I am at work right now"]
GAP = 4.5  # seconds between the starts of caller utterances: room for ASR + reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=55, help="caller turns per call")
    parser.add_argument("--calls", type=int, default=1, help="simultaneous calls, one baresip phone each")
    parser.add_argument("--rasa-url", default=None, help="use a running Rasa instead of the scripted bot")
    parser.add_argument("--no-speculation", action="store_true",
                        help="recognise only after end of speech (the baseline for speculative recognition)")
    args = parser.parse_args()
    print(describe())

    with tempfile.TemporaryDirectory() as tmp, ScriptedRasa() as scripted:
        workdir = Path(tmp)
        sources = []
        for call in range(args.calls):  # each phone starts talking a little later: the calls' turns interleave
            pcm = bytearray(b"\x00\x00" * int(8000 * (3 + GAP * call / args.calls)))
            start = len(pcm) / 16000
            for i in range(args.turns):
                pcm += flite_pcm(PHRASES[(i + call) % len(PHRASES)], voice=["slt", "rms", "awb", "kal16"][i % 4])
                target = int((start + (i + 1) * GAP) * 16000)
                pcm += b"\x00" * max(0, target - len(pcm))
            pcm += b"\x00\x00" * 8000 * 5
            source = workdir / f"caller-{call}.wav"
            source.write_bytes(wav_bytes(bytes(pcm)))
            sources.append((source, len(pcm) / 16000))

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
                                   rtp_high=rtp + 4 * args.calls + 20), runtime, loop)
        phones = [Baresip(workdir, port, source, user=f"phone{call}") for call, (source, _) in enumerate(sources)]
        try:
            agent.start()
            for phone in phones:
                phone.start()
                phone.wait_registered()
            for phone in phones:
                phone.command("dial", f"sip:duebot@127.0.0.1:{port}")
            for phone in phones:
                phone.wait_event("CALL_ESTABLISHED", timeout=30)
            deadline = time.monotonic() + max(seconds for _, seconds in sources) + 10
            while time.monotonic() < deadline:
                time.sleep(0.5)
                sessions = list(agent.sessions.values())
                if len(sessions) == args.calls and all(
                        sum(t.latency is not None for t in s.turns) >= args.turns for s in sessions):
                    break
            for phone in phones:
                phone.command("hangup")
            time.sleep(1)
        finally:
            for phone in phones:
                phone.stop()
            agent.stop()
            stop(kamailio, grace=3)
            loop.call_soon_threadsafe(loop.stop)
    sessions = list(agent.sessions.values())
    latencies = [t.latency * 1000 for s in sessions for t in s.turns if t.speaker == "bot" and t.latency is not None]
    heard = [t for s in sessions for t in s.turns if t.speaker == "caller"]
    print(f"loopback SIP, {len(sessions)} simultaneous call(s), {len(latencies)} turns ({len(heard)} caller "
          f"utterances recognised): turn latency p50 {percentile(latencies, 0.5):.0f} ms, "
          f"p95 {percentile(latencies, 0.95):.0f} ms, min {min(latencies):.0f} ms, max {max(latencies):.0f} ms "
          f"(includes {runtime.config.endpointer.end_silence * 1000:.0f} ms end-of-speech silence)")
    late = sum(s.player.late_frames for s in sessions)
    sent = sum(s.player.frames_sent for s in sessions)
    print(f"bot audio frames sent late (underrun): {late} of {sent} ({100 * late / max(sent, 1):.2f} %)")
    print(f"speculative recognition from {runtime.config.endpointer.pause_silence} s pauses: "
          f"{sum(s.speculation_hits for s in sessions)} used, {sum(s.speculation_misses for s in sessions)} dropped "
          f"(the caller went on)")

if __name__ == "__main__":
    main()
