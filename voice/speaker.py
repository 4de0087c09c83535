"""The TTS stage: the bot's replies synthesised sentence by sentence and played at the wire's pace.

Sentence n plays while sentence n+1 is synthesised. Barge-in cuts what is interruptible; a reply that says
`hangup` ends the call once its audio has left. A synthesis failure leaves this stage as a `TtsError`, reported
to the session (the speaking runs as its own task, so there is nobody to raise it to).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from duebot.voice.errors import TtsError
from duebot.voice.events import BotReply
from duebot.voice.normalize import speech_normaliser
from duebot.voice.player import Player, Utterance
from duebot.voice.recorder import CallRecorder
from duebot.voice.transport import CallTransport
from duebot.voice.tts import TtsEngine

log = logging.getLogger(__name__)


class Speaker:
    def __init__(self, tts: TtsEngine, transport: CallTransport, recorder: CallRecorder, *,
                 hang_up: Callable[[], Awaitable[None]], on_error: Callable[[TtsError], None],
                 hangup_tail: float, language: str = "en") -> None:
        self.tts = tts
        self.text = speech_normaliser(language)  # replies are normalised in the call's language
        self.transport = transport
        self.recorder = recorder
        self.player = Player(transport.send_audio)
        self._hang_up = hang_up
        self._on_error = on_error
        self.hangup_tail = hangup_tail
        self.task: asyncio.Task[None] | None = None  # the replies being spoken
        self._playing: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        self._playing = asyncio.get_running_loop().create_task(self.player.run(), name=name)

    async def stop(self) -> None:
        if self.task and not self.task.done():
            self.task.cancel()
        if self._playing:
            self._playing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._playing

    @property
    def busy(self) -> bool:
        """Talking, or synthesising the rest of a reply (between two sentences too)."""
        return self.player.busy or (self.task is not None and not self.task.done())

    async def say(self, replies: list[BotReply], eos: float | None) -> None:
        """Queue the replies after whatever is being said; `eos` is the caller speech they answer (latency)."""
        if self.task and not self.task.done():
            await asyncio.wait([self.task])
        self.task = asyncio.get_running_loop().create_task(self._speak(replies, eos))

    async def finished(self) -> None:
        if self.task:
            await asyncio.wait([self.task])

    def cut(self) -> list[Utterance]:
        """Barge-in: drop the interruptible audio not yet played; the utterances cut off."""
        if not self.player.busy or self.player.protected:
            return []  # nothing playing, or the legally required disclosure: it is not interruptible
        cut = self.player.flush()
        if self.task and not self.task.done() and not any(u.uninterruptible for u in cut):
            self.task.cancel()  # stop synthesising the rest of the reply
        if cut:
            asyncio.get_running_loop().create_task(self.transport.clear())
        return cut

    async def _speak(self, replies: list[BotReply], eos: float | None) -> None:
        hangup = False
        for reply in replies:
            hangup = hangup or reply.hangup
            if not reply.text:
                continue
            utterance = Utterance(reply.text, reply.uninterruptible)
            try:
                for sentence in self.text.split_sentences(self.text.normalize_for_speech(reply.text)):
                    pcm = await self._synthesize(sentence)
                    if utterance.interrupted:
                        break
                    self.player.enqueue(utterance, pcm)
                self.player.finish(utterance)
                await utterance.done.wait()
                if not utterance.interrupted and hasattr(self.transport, "mark"):
                    await self.transport.mark(f"bot-{len(self.recorder.turns)}")
            except TtsError as error:
                self.player.finish(utterance)  # what was synthesised still plays, then the session takes over
                await utterance.done.wait()
                self._on_error(error)
                return
            finally:
                self.recorder.bot(utterance, eos)
                eos = None
            if utterance.interrupted:
                return
        if hangup:
            await asyncio.sleep(self.player.lead + self.hangup_tail)
            await self._hang_up()

    async def _synthesize(self, sentence: str) -> bytes:
        try:
            return await asyncio.to_thread(self.tts.sentence, sentence)
        except Exception as exc:
            raise TtsError(f"{getattr(self.tts, 'name', 'tts')}: {exc!r}") from exc
