"""ASR word error rate at 8 kHz µ-law on independent speech (Debian flite voices), and Piper's real-time factor.

    .venv/bin/python evaluation/bench_voice_asr_tts.py [--voices kal16 awb rms slt] [--limit 25] [--window 1500 3000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe  # noqa: E402
from _stats import percentile  # noqa: E402

from duebot.voice.asr import WhisperEngine  # noqa: E402
from duebot.voice.audio import SAMPLE_RATE, pcm_to_ulaw, read_wav_8k, ulaw_to_pcm  # noqa: E402
from duebot.voice.tts import PiperTts  # noqa: E402

# Things subscribers say to a collection bot; numbers written as words so WER compares like with like.
SENTENCES = [
    "yes this is me", "no you have the wrong number", "i can pay next friday", "i want to speak to an agent",
    "i already paid that bill", "can i pay in three parts", "i lost my job last month", "please stop calling me",
    "i do not recognise this charge", "how much do i owe", "send me the payment link", "i will pay tomorrow morning",
    "my wife handles the bills", "can you call me back later", "i am driving right now", "what is this call about",
    "i need more time to pay", "the amount is wrong", "i want to dispute this bill", "that is correct",
    "i can pay fifty dollars now", "my account number is four four seven two", "call me after six",
    "i never signed up for this plan", "thank you goodbye",
]
TTS_TEXT = [
    "Hello, this is Duebot calling on behalf of your phone company.",
    "Your balance is $58.20, overdue since 2025-03-15.",
    "To pay now, press 1. For a payment plan, press 2. To speak to an agent, press 0.",
    "Thank you. I have noted your promise to pay on the 21st of March.",
    "This call is recorded for quality and legal purposes.",
]
_NUMBER_WORDS = {"50": "fifty", "4472": "four four seven two", "6": "six", "3": "three", "$50": "fifty dollars"}


def normalise(text: str) -> list[str]:
    text = text.lower().replace("$50", "fifty dollars").replace("recognize", "recognise")
    words = re.findall(r"[a-z0-9']+", text)
    out: list[str] = []
    for w in words:
        out.extend(_NUMBER_WORDS.get(w, w).split())
    return [w.replace("'", "") for w in out]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", nargs="+", default=["kal16", "awb", "rms", "slt"])
    parser.add_argument("--limit", type=int, default=len(SENTENCES))
    parser.add_argument("--window", type=int, nargs="+", default=[1500, WhisperEngine.FULL_WINDOW],
                        help="shortest encoder windows to compare, in 10 ms feature frames (3000 = Whisper's 30 s)")
    args = parser.parse_args()
    print(describe())

    speech: list[tuple[str, str, bytes]] = []  # (voice, sentence, 8 kHz PCM through the telephone codec)
    with tempfile.TemporaryDirectory() as tmp:
        for voice in args.voices:
            for i, sentence in enumerate(SENTENCES[: args.limit]):
                wav = Path(tmp) / f"{voice}-{i}.wav"
                subprocess.run(["flite", "-voice", voice, "-t", sentence, "-o", str(wav)], check=True)
                speech.append((voice, sentence, ulaw_to_pcm(pcm_to_ulaw(read_wav_8k(str(wav))))))
    n = min(args.limit, len(SENTENCES))
    p50: dict[int, float] = {}
    for window in args.window:
        asr = WhisperEngine(min_window=window)
        asr.transcribe(speech[0][2])  # warm up
        errors = words = 0
        per_voice: dict[str, list[int]] = {}
        decode_s: list[float] = []
        for voice, sentence, pcm in speech:
            started = time.perf_counter()
            heard = asr.transcribe(pcm).text
            decode_s.append(time.perf_counter() - started)
            ref, hyp = normalise(sentence), normalise(heard)
            counts = per_voice.setdefault(voice, [0, 0])
            counts[0] += edit_distance(ref, hyp)
            counts[1] += len(ref)
        print(f"window {window} frames ({window / 100:g} s):")
        for voice, (verrors, vwords) in per_voice.items():
            print(f"  flite {voice:<6} WER {100 * verrors / vwords:5.1f} %  ({vwords} words)")
            errors, words = errors + verrors, words + vwords
        p50[window] = percentile(decode_s, 0.5)
        print(f"ASR faster-whisper tiny.en, 8 kHz µ-law, {len(args.voices)} flite voices x {n} sentences, "
              f"window ≥ {window / 100:g} s: WER {100 * errors / words:.1f} % over {words} words; decode p50 "
              f"{1000 * p50[window]:.0f} ms, p95 {1000 * percentile(decode_s, 0.95):.0f} ms per utterance; "
              f"{asr.fallbacks} redone in the full window")
    if WhisperEngine.FULL_WINDOW in p50:
        for window, value in p50.items():
            print(f"  decode time, window {window} vs full window: {value / p50[WhisperEngine.FULL_WINDOW]:.2f}x")

    tts = PiperTts(cache_size=0)
    tts.sentence("Warm up.", cache=False)
    synth = audio = 0.0
    first: list[float] = []
    for text in TTS_TEXT:
        started = time.perf_counter()
        for n, pcm in enumerate(tts.stream(text, cache=False)):
            if n == 0:
                first.append(time.perf_counter() - started)
            audio += len(pcm) / 2 / SAMPLE_RATE
        synth += time.perf_counter() - started
    print(f"TTS Piper en_US-joe-medium → 8 kHz: real-time factor {synth / audio:.3f} ({synth:.2f} s for {audio:.1f} s "
          f"of audio); first sentence ready p50 {1000 * percentile(first, 0.5):.0f} ms")


if __name__ == "__main__":
    main()
