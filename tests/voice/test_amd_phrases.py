"""Answering-machine phrases as data (voice/amd_phrases.yml): Mandarin and English greetings and carrier
announcements, whatever the call's language, as Whisper (traditional or simplified) or Vosk (spaced) writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from duebot.voice.amd import PHRASES, classify_greeting, greeting_phrase, machine_phrases


@pytest.mark.parametrize(("heard", "language", "kind"), [
    # the carriers' announcements (China Mobile, Unicom, Telecom)
    ("您拨打的电话暂时无法接通，请稍后再拨。", "zh", "network"),
    ("您拨打的用户已关机。", "zh", "network"),
    ("对不起，您拨打的电话已关机。", "zh", "network"),
    ("您拨打的电话正在通话中，请稍后再拨。", "zh", "network"),
    ("您拨打的电话暂时无人接听。", "zh", "network"),
    ("您拨打的号码是空号，请查证后再拨。", "zh", "network"),
    ("您拨打的电话已停机。", "zh", "network"),
    ("您拨打的用户不在服务区。", "zh", "network"),
    ("您拨打的用户已设置呼叫限制。", "zh", "network"),
    # voicemail and call-screening assistants
    ("请在提示音后留言。", "zh", "voicemail"),
    ("请在嘀声之后留言，留言完毕请挂机。", "zh", "voicemail"),
    ("您好，请留言。", "zh", "voicemail"),
    ("欢迎使用语音信箱。", "zh", "voicemail"),
    ("您好，我是机主的智能助理，机主现在不方便接听电话。", "zh", "voicemail"),
    ("您的来电我会转告机主。", "zh", "voicemail"),
    # as the recognisers write it: Whisper in traditional characters, Vosk with spaces between words
    ("您撥打的電話暫時無法接通", "zh", "network"),
    ("您撥打的用戶已關機", "zh", "network"),
    ("請在提示音後留言", "zh", "voicemail"),
    ("您 拨打 的 电话 暂时 无法 接通 请 稍后 再拨", "zh", "network"),
    ("请 在 提示音 后 留言", "zh", "voicemail"),
    # English, and the carriers' English half
    ("Please leave a message after the tone.", "en", "voicemail"),
    ("You have reached the voice mailbox of Sam.", "en", "voicemail"),
    ("Sorry, the number you dialed cannot be connected, please try again later.", "en", "network"),
    ("The subscriber you have dialed is power off.", "en", "network"),
])
def test_recorded_greetings_are_recognised_in_either_language(heard: str, language: str, kind: str) -> None:
    phrase = greeting_phrase(heard)
    assert phrase is not None, heard
    assert (phrase.language, phrase.kind) == (language, kind)
    assert classify_greeting(0.8, heard) == "machine", "the phrase decides, even for a short greeting"


@pytest.mark.parametrize("heard", ["喂？", "喂，你好。", "你好，哪位？", "是我，什么事？", "嗯，你说。", "谁啊？",
                                   "Hello?", "Yes, speaking.", ""])
def test_a_person_answering_is_not_a_machine(heard: str) -> None:
    assert greeting_phrase(heard) is None
    assert classify_greeting(0.8, heard) == "human"
    assert classify_greeting(3.0, heard) == "machine", "talking on for seconds is a recording, whatever it says"


def test_every_language_of_the_file_has_phrases_and_they_compile() -> None:
    data = yaml.safe_load(PHRASES.read_text(encoding="utf-8"))
    assert set(data) >= {"en", "zh"}
    for language, kinds in data.items():
        assert set(kinds) == {"voicemail", "network"}, language
    assert {(p.language, p.kind) for p in machine_phrases()} == {(lang, kind) for lang in data
                                                                 for kind in ("voicemail", "network")}
    for phrase in machine_phrases():
        if phrase.language == "zh":  # matched on unspaced text: a space in a pattern could never match
            assert " " not in phrase.pattern.pattern, phrase.pattern.pattern


def test_a_bad_pattern_names_the_file_and_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "amd_phrases.yml"
    bad.write_text("zh:\n  voicemail:\n    - '请(留言'\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"amd_phrases.yml: zh/voicemail: bad pattern"):
        machine_phrases(bad)
