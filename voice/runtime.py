"""What all calls of a process share: the loaded models, the dialogue, the evidence sink, the gate hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from duebot.settings import load_settings
from duebot.voice.asr import AsrEngine, load_engine
from duebot.voice.config import voice_models
from duebot.voice.dialogue import Dialogue, RasaRestDialogue
from duebot.voice.evidence import EvidenceSink, MemoryEvidenceSink
from duebot.voice.identity import conversation_id_for, opaque_sender
from duebot.voice.session import CallSession, CallTransport, VoiceConfig
from duebot.voice.tts import EspeakTts, PiperTts, TtsEngine

# The compliance gate's hook: may duebot contact `to` on `channel` ("voice") now? It must also reserve the
# contact (count it against the daily caps) when it answers True. Wired by the lead to policies/.
ReserveContact = Callable[[str, str], bool]


def allow_all(to: str, channel: str) -> bool:  # noqa: ARG001 - the signature is the contract
    return True


class ContactNotAllowed(RuntimeError):
    """The compliance gate refused (or could not reserve) this outbound contact."""


@dataclass
class VoiceRuntime:
    asr: AsrEngine
    tts: TtsEngine
    dialogue: Dialogue
    evidence: EvidenceSink = field(default_factory=MemoryEvidenceSink)
    config: VoiceConfig = field(default_factory=VoiceConfig)
    reserve_contact: ReserveContact = allow_all
    language: str | None = None  # set from the models: the dialogue is told, so prompts match the voice
    id_key: bytes | None = None  # keys the opaque conversation ids; None: the `voice` secret (duebot/secrets.py)

    @classmethod
    def from_env(cls, evidence: EvidenceSink | None = None, reserve_contact: ReserveContact = allow_all,
                 rasa_url: str | None = None, language: str | None = None) -> VoiceRuntime:
        """The models of `language` (DUEBOT_VOICE_LANGUAGE, default en), checked first (voice/config.py):
        English: DUEBOT_VOSK_MODEL selects Vosk, otherwise the packaged Whisper tiny.en; Piper voice overridable.
        Mandarin: DUEBOT_VOSK_MODEL_ZH (or DUEBOT_WHISPER_MODEL_ZH) and DUEBOT_PIPER_VOICE_ZH (or espeak-ng when
        DUEBOT_ESPEAK_FALLBACK_ZH is set), and the zh Rasa server."""
        settings = load_settings()
        models = voice_models(language, settings.voice, espeak_fallback=settings.voice.espeak_fallback_zh)
        asr = load_engine(models.vosk_model, models.whisper_model,
                          workers=settings.voice.asr_workers, language=models.language)
        tts: TtsEngine = (EspeakTts(models.language) if models.tts == "espeak-ng"
                          else PiperTts(models.piper_voice, language=models.language))
        url = rasa_url or settings.voice.rasa_url or settings.rasa_url_for(models.language)
        return cls(asr, tts, RasaRestDialogue(url), evidence or MemoryEvidenceSink(), VoiceConfig(), reserve_contact,
                   models.language)

    def session(self, call_id: str, transport: CallTransport, *, direction: str, sender: str | None = None,
                caller: str | None = None, metadata: dict[str, Any] | None = None) -> CallSession:
        """`sender`: the conversation id the carrier chose (an account's, say); `caller`: the number (or SIP user) at
        the other end, used only through its opaque id (voice/identity.py). A `sender` that is a phone number is
        made opaque the same way: no conversation id, Rasa sender id or evidence record is ever named by a number."""
        sender = self.conversation_id(sender=sender, caller=caller)
        if self.language is not None:  # a Mandarin voice talks Mandarin whatever the account says, and vice versa
            metadata = {**(metadata or {}), "language": self.language}
        return CallSession(call_id, transport, self.asr, self.tts, self.dialogue, self.evidence, self.config,
                           direction=direction, sender=sender, metadata=metadata, language=self.language or "en")

    def conversation_id(self, *, sender: str | None = None, caller: str | None = None) -> str | None:
        """The call's conversation id: `sender` when the carrier chose one (a phone number made opaque), else the
        opaque id of `caller`; None when neither is known (the session then goes by its call id)."""
        if sender:
            return opaque_sender(sender, self.id_key)
        return conversation_id_for(caller, self.id_key) if caller else None

    def check_outbound(self, to: str) -> None:
        if not self.reserve_contact(to, "voice"):
            raise ContactNotAllowed(f"the compliance gate did not allow a voice call to {to}")
