"""Voice fixtures: the real models (loaded once), flite speech for the caller, the scripted REST bot."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from duebot.voice.asr import WhisperEngine
from duebot.voice.audio import read_wav_8k
from duebot.voice.tts import PiperTts
from tests.voice.scripted_dialogue import ScriptedRasa

AUDIO_CACHE = Path(tempfile.gettempdir()) / "duebot-voice-test-audio"  # generated, not versioned


def flite_pcm(text: str, voice: str = "slt") -> bytes:
    """Caller speech from Debian's flite (an independent voice, not the bot's), 8 kHz 16-bit PCM."""
    AUDIO_CACHE.mkdir(exist_ok=True)
    key = hashlib.sha1(f"{voice}:{text}".encode()).hexdigest()[:16]
    wav = AUDIO_CACHE / f"{voice}-{key}.wav"
    if not wav.exists():
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    return read_wav_8k(str(wav))


@pytest.fixture(scope="session")
def whisper() -> WhisperEngine:
    return WhisperEngine(workers=2)


@pytest.fixture(scope="session")
def piper() -> PiperTts:
    return PiperTts()


@pytest.fixture
def scripted_rasa() -> Iterator[ScriptedRasa]:
    with ScriptedRasa() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
