"""ASR word error rate at 8 kHz µ-law on independent speech (Debian flite voices), and Piper's real-time factor.

    .venv/bin/python evaluation/bench_voice_asr_tts.py [--voices kal16 awb rms slt] [--limit 25]
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

from _machine import describe, percentile  # noqa: E402

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
    args = parser.parse_args()
    print(describe())

    asr = WhisperEngine()
    errors = words = 0
    decode_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in args.voices:
            verrors = vwords = 0
            for i, sentence in enumerate(SENTENCES[: args.limit]):
                wav = Path(tmp) / f"{voice}-{i}.wav"
                subprocess.run(["flite", "-voice", voice, "-t", sentence, "-o", str(wav)], check=True)
                pcm = ulaw_to_pcm(pcm_to_ulaw(read_wav_8k(str(wav))))  # through the telephone codec
                started = time.perf_counter()
                heard = asr.transcribe(pcm).text
                decode_s.append(time.perf_counter() - started)
                ref, hyp = normalise(sentence), normalise(heard)
                verrors += edit_distance(ref, hyp)
                vwords += len(ref)
            print(f"  flite {voice:<6} WER {100 * verrors / vwords:5.1f} %  ({vwords} words)")
            errors, words = errors + verrors, words + vwords
    n = min(args.limit, len(SENTENCES))
    print(f"ASR faster-whisper tiny.en, 8 kHz µ-law, {len(args.voices)} flite voices x {n} "
          f"sentences: WER {100 * errors / words:.1f} % over {words} words; decode p50 "
          f"{1000 * percentile(decode_s, 0.5):.0f} ms, p95 {1000 * percentile(decode_s, 0.95):.0f} ms per utterance")

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
