"""Which speech models a voice process loads for a conversation language, checked before anything loads.

English has packaged defaults (Whisper tiny.en, Piper en_US-joe-medium). No registry ships a Chinese Vosk
model or Chinese Piper voice, so Mandarin calls need both configured (docs/voice.md, "Chinese voice models"):
a recogniser, DUEBOT_VOSK_MODEL_ZH (an unpacked Vosk model directory, e.g. vosk-model-small-cn-0.22) or else
DUEBOT_WHISPER_MODEL_ZH (a multilingual faster-whisper model folder), and a voice, DUEBOT_PIPER_VOICE_ZH (a Piper
.onnx with its .onnx.json, e.g. zh_CN-huayan-medium) or, only when asked for, espeak-ng's Mandarin voice. A
missing directory, a model at a sample rate telephone audio cannot use, or a model or voice of another language
is refused with a message naming the variable, the path and what to do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from duebot.settings import LANGUAGES, VoiceSettings, language_of_tag, load_settings

TELEPHONE_RATE = 8000
WHISPER_ENGLISH_VOCABULARY = 51864  # tokens of an English-only Whisper (*.en); multilingual ones have more
VOSK_RATES = (8000, 16000)  # Kaldi models for speech are trained at one of these; telephone audio is upsampled
DOCS = "see docs/voice.md, section 'Chinese voice models'"
# What a Vosk model's README or folder name says about its language (Vosk models carry no language field).
_VOSK_LANGUAGE_HINTS = {
    "zh": re.compile(r"chinese|mandarin|(^|[-_ ])(cn|zh)([-_ .]|$)", re.I),
    "en": re.compile(r"english|(^|[-_ ])en([-_ .]|$)", re.I),
}
_OTHER_LANGUAGE = re.compile(r"korean|japanese|german|french|spanish|russian|italian|portuguese|arabic|hindi|"
                             r"vietnamese|turkish|persian|ukrainian|(^|[-_ ])(ko|ja|de|fr|es|ru|it|pt|ar|hi|vn|tr|"
                             r"fa|uk)([-_ .]|$)", re.I)


class VoiceConfigError(ValueError):
    pass


@dataclass(frozen=True)
class VoiceModels:
    language: str
    vosk_model: Path | None  # None: Whisper (English only)
    whisper_model: Path | None  # None with no Vosk model: the packaged Whisper tiny.en
    piper_voice: Path | None  # None: the packaged en_US-joe-medium (or espeak-ng, see `tts`)
    vosk_rate: int | None = None
    piper_rate: int | None = None
    tts: str = "piper"  # or "espeak-ng": the last-resort voice, when no Piper voice of the language is configured


def voice_models(language: str | None = None, voice: VoiceSettings | None = None,
                 espeak_fallback: bool = False) -> VoiceModels:
    """The checked models for `language` (default DUEBOT_VOICE_LANGUAGE, else en), from the settings tree.
    `espeak_fallback`: a language without a configured Piper voice speaks with espeak-ng instead of refusing."""
    voice = voice or load_settings().voice
    language = language or voice.language
    if language not in LANGUAGES:
        raise VoiceConfigError(f"voice language {language!r}: expected one of {', '.join(LANGUAGES)}")
    named = voice.model_variables(language)
    (vosk_var, vosk), (whisper_var, whisper), (piper_var, piper) = named["vosk"], named["whisper"], named["piper"]
    tts = "piper"
    if language != "en":
        # Whisper tiny.en and the packaged Piper voice are English: nothing to fall back to but what is configured.
        if vosk is None and whisper is None:
            raise VoiceConfigError(f"{language} calls need a {language} recogniser: set {vosk_var} to an unpacked "
                                   f"Vosk model directory, or {whisper_var} to a multilingual faster-whisper model "
                                   f"folder ({DOCS})")
        if piper is None and not espeak_fallback:
            raise VoiceConfigError(f"{language} calls need a {language} Piper voice: set {piper_var} to its .onnx "
                                   f"file ({DOCS})")
        tts = "piper" if piper is not None else "espeak-ng"
    vosk_rate = check_vosk_model(Path(vosk), language, vosk_var) if vosk else None
    if whisper and not vosk:
        check_whisper_model(Path(whisper), language, whisper_var)
    elif whisper and not Path(whisper).is_dir():
        raise VoiceConfigError(f"{whisper_var}={whisper}: no such directory")
    piper_rate = check_piper_voice(Path(piper), language, piper_var) if piper else None
    return VoiceModels(language, Path(vosk) if vosk else None, Path(whisper) if whisper else None,
                       Path(piper) if piper else None, vosk_rate, piper_rate, tts)


def whisper_vocabulary_size(model: Path) -> int | None:
    """Tokens in a CTranslate2 Whisper model's vocabulary (vocabulary.txt or .json), None when it has neither."""
    text, listed = model / "vocabulary.txt", model / "vocabulary.json"
    if text.is_file():
        return len(text.read_text(encoding="utf-8").splitlines())
    if listed.is_file():
        return len(json.loads(listed.read_text(encoding="utf-8")))
    return None


def check_whisper_model(model: Path, language: str, variable: str = "DUEBOT_WHISPER_MODEL") -> None:
    where = f"{variable}={model}"
    if not model.is_dir():
        raise VoiceConfigError(f"{where}: no such directory")
    if not (model / "model.bin").is_file():
        raise VoiceConfigError(f"{where}: not a faster-whisper (CTranslate2) model: no model.bin ({DOCS})")
    size = whisper_vocabulary_size(model)
    if language != "en" and size is not None and size <= WHISPER_ENGLISH_VOCABULARY:
        raise VoiceConfigError(f"{where}: an English-only Whisper model cannot transcribe {language}; use a "
                               f"multilingual one ({DOCS})")


def vosk_sample_rate(model: Path) -> int:
    """The rate the model's features are computed at (conf/mfcc.conf; Kaldi's default is 16 kHz)."""
    mfcc = model / "conf" / "mfcc.conf"
    match = re.search(r"--sample-frequency=(\d+(?:\.\d+)?)", mfcc.read_text()) if mfcc.exists() else None
    return int(float(match.group(1))) if match else 16000


def _vosk_language(model: Path) -> str | None:
    readme = model / "README"
    said = f"{model.resolve().name} {readme.read_text(errors='replace')[:500] if readme.exists() else ''}"
    for language, hint in _VOSK_LANGUAGE_HINTS.items():
        if hint.search(said):
            return language
    return "other" if _OTHER_LANGUAGE.search(said) else None


def check_vosk_model(model: Path, language: str, variable: str = "DUEBOT_VOSK_MODEL") -> int:
    where = f"{variable}={model}"
    if not model.exists():
        raise VoiceConfigError(f"{where}: no such directory ({DOCS})")
    if not model.is_dir():
        raise VoiceConfigError(f"{where}: not a directory; unpack the model's zip and point at the folder ({DOCS})")
    if not (model / "am" / "final.mdl").is_file() or not (model / "conf").is_dir():
        raise VoiceConfigError(f"{where}: not a Vosk model (no am/final.mdl and conf/); point at the folder that "
                               "holds them")
    rate = vosk_sample_rate(model)
    if rate not in VOSK_RATES:
        raise VoiceConfigError(f"{where}: the model works at {rate} Hz; calls need a model at "
                               f"{' or '.join(map(str, VOSK_RATES))} Hz (telephone audio is {TELEPHONE_RATE} Hz)")
    found = _vosk_language(model)
    if found is not None and found != language:
        raise VoiceConfigError(f"{where}: this Vosk model is not a {language} model (its README and name say "
                               f"{'another language' if found == 'other' else found}); {DOCS}")
    return rate


def check_piper_voice(voice: Path, language: str, variable: str = "DUEBOT_PIPER_VOICE") -> int:
    where = f"{variable}={voice}"
    if not voice.is_file():
        raise VoiceConfigError(f"{where}: no such file (a Piper voice is an .onnx file with its .onnx.json)")
    config_path = voice.with_name(voice.name + ".json")
    if not config_path.is_file():
        raise VoiceConfigError(f"{where}: its config {config_path.name} is missing next to it")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        rate = int(config["audio"]["sample_rate"])
    except (ValueError, KeyError, TypeError) as exc:
        raise VoiceConfigError(f"{where}: {config_path.name} is not a Piper voice config ({exc})") from exc
    if rate < TELEPHONE_RATE:
        raise VoiceConfigError(f"{where}: the voice speaks at {rate} Hz, below the {TELEPHONE_RATE} Hz of a phone "
                               "line; choose a voice of at least that rate (Piper's are 16000 or 22050)")
    code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get("voice") or ""
    if language_of_tag(code) != language:
        raise VoiceConfigError(f"{where}: the voice speaks {code or 'an unknown language'}, not {language}; "
                               f"{DOCS}")
    return rate
