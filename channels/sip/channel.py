"""SIP voice channel on `rfcvoip` (the maintained fork of pyVoIP with the same 1.6 API).

pyVoIP 1.6.8 is not used: against a real peer it drops messages with an empty header (baresip sends
`Supported:`), acks outbound 200 OKs with a wrong To-tag (the far end hangs up after 32 s), sends µ-law on a
PCMA call and has a circular import; rfcvoip 2.10.3 completed calls both ways with no patches.

rfcvoip is thread-based: each call gets a reader thread that moves 20 ms frames and DTMF digits onto the
asyncio loop where the call's `CallSession` runs; bot audio goes back with `write_audio`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass

from duebot.settings import Settings, load_settings
from duebot.voice.audio import FRAME_BYTES_PCM, pcm_to_ulaw, ulaw_to_pcm
from duebot.voice.runtime import VoiceRuntime
from duebot.voice.session import CallSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SipConfig:
    server: str  # the registrar / proxy (kamailio, the operator's SBC)
    port: int
    username: str
    password: str
    local_ip: str = "127.0.0.1"
    local_port: int = 5062
    rtp_low: int = 20000
    rtp_high: int = 20999

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SipConfig:
        sip = (settings or load_settings()).sip
        low, high = sip.rtp_range
        return cls(server=sip.server, port=sip.port, username=sip.user, password=sip.password.get_secret_value(),
                   local_ip=sip.local_ip, local_port=sip.local_port, rtp_low=low, rtp_high=high)


class SipCallTransport:
    """Bot audio into rfcvoip's RTP sender. The player paces frames, so rfcvoip's buffer stays ~60 ms."""

    def __init__(self, call: object) -> None:
        self.call = call

    async def send_audio(self, ulaw: bytes) -> None:
        self.call.write_audio(ulaw_to_pcm(ulaw))  # type: ignore[attr-defined]

    async def clear(self) -> None:
        # Drop what rfcvoip still holds for the wire (at most the player's lead).
        for client in self.call._rtp_clients_snapshot():  # type: ignore[attr-defined]  # noqa: SLF001
            with client.pmout.bufferLock:
                client.pmout.read(client.pmout.available())

    async def hangup(self) -> None:
        await asyncio.to_thread(_hangup_quietly, self.call)


def _hangup_quietly(call: object) -> None:
    from rfcvoip.VoIP import CallState

    if call.state == CallState.ANSWERED:  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            call.hangup()  # type: ignore[attr-defined]


class SipAgent:
    """Registers duebot with the SIP registrar, answers inbound calls and places outbound ones."""

    def __init__(self, config: SipConfig, runtime: VoiceRuntime, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.runtime = runtime
        self.loop = loop
        self.phone: object | None = None
        self.sessions: dict[str, CallSession] = {}
        self.finished: dict[str, Future[None]] = {}

    def start(self, timeout: float = 10.0) -> None:
        from rfcvoip.VoIP import PhoneStatus, VoIPPhone

        c = self.config
        self.phone = VoIPPhone(c.server, c.port, c.username, c.password, myIP=c.local_ip,
                               callCallback=self._on_inbound, sipPort=c.local_port, rtpPortLow=c.rtp_low,
                               rtpPortHigh=c.rtp_high, audio_sample_rate=8000, audio_bit_depth=16)
        self.phone.start()
        deadline = time.monotonic() + timeout
        while self.phone.get_status() != PhoneStatus.REGISTERED:
            if time.monotonic() > deadline or self.phone.get_status() == PhoneStatus.FAILED:
                raise ConnectionError(f"SIP registration with {c.server}:{c.port} failed: {self.phone.get_status()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.phone is not None:
            with contextlib.suppress(Exception):
                self.phone.stop()  # type: ignore[attr-defined]

    # ---- inbound (rfcvoip calls this on its own thread) ---------------------------------------------
    def _on_inbound(self, call: object) -> None:
        try:
            call.answer()  # type: ignore[attr-defined]
        except Exception:
            log.exception("could not answer SIP call")
            return
        # who called is known only by the number (or SIP user) in From: the session keeps it as an opaque id
        self._bridge(call, "inbound", caller=_caller_id(call))

    # ---- outbound -----------------------------------------------------------------------------------
    async def call(self, number: str, sender: str | None = None, answer_timeout: float = 30.0) -> CallSession:
        """Dial `number` once the gate reserved the contact; returns the session once answered."""
        self.runtime.check_outbound(number)
        call = await asyncio.to_thread(self._dial, number, answer_timeout)
        return await asyncio.wrap_future(self._bridge_async(call, "outbound", sender=sender, caller=number))

    def _dial(self, number: str, answer_timeout: float) -> object:
        from rfcvoip.VoIP import CallState

        assert self.phone is not None, "start() first"
        call = self.phone.call(number)  # type: ignore[attr-defined]
        deadline = time.monotonic() + answer_timeout
        while call.state != CallState.ANSWERED:
            if call.state == CallState.ENDED or time.monotonic() > deadline:
                _hangup_quietly(call)
                raise ConnectionError(f"{number} did not answer")
            time.sleep(0.01)
        return call

    # ---- the bridge between rfcvoip's threads and the session's loop --------------------------------
    def _bridge_async(self, call: object, direction: str, *, sender: str | None,
                      caller: str) -> Future[CallSession]:
        ready: Future[CallSession] = Future()
        threading.Thread(target=self._bridge, args=(call, direction), kwargs={"sender": sender, "caller": caller,
                                                                             "ready": ready}, daemon=True,
                         name=f"sip-{direction}").start()
        return ready

    def _bridge(self, call: object, direction: str, *, sender: str | None = None, caller: str | None = None,
                ready: Future[CallSession] | None = None) -> None:
        from rfcvoip.VoIP import CallState

        call_id = f"sip-{uuid.uuid4().hex[:12]}"

        async def create() -> CallSession:
            session = self.runtime.session(call_id, SipCallTransport(call), direction=direction, sender=sender,
                                           caller=caller, metadata={"carrier": "sip"})
            self.sessions[call_id] = session
            return session

        session = asyncio.run_coroutine_threadsafe(create(), self.loop).result()
        self.finished[call_id] = asyncio.run_coroutine_threadsafe(session.run(), self.loop)
        if ready is not None:
            ready.set_result(session)
        try:
            while call.state == CallState.ANSWERED and not self.finished[call_id].done():  # type: ignore[attr-defined]
                pcm = call.read_audio(FRAME_BYTES_PCM, blocking=True)  # type: ignore[attr-defined]
                if len(pcm) == FRAME_BYTES_PCM:
                    self.loop.call_soon_threadsafe(session.feed_audio, pcm_to_ulaw(pcm))
                digit = call.get_dtmf()  # type: ignore[attr-defined]
                if digit:
                    self.loop.call_soon_threadsafe(session.feed_dtmf, digit)
        finally:
            self.loop.call_soon_threadsafe(session.remote_hangup, "sip call ended")


def _caller_id(call: object) -> str:
    try:
        return str(call.request.headers["From"]["number"])  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a missing/odd From header is not worth failing the call
        return "unknown"
