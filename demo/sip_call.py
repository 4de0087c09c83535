"""The demo's phone call: duebot calls a persona over real SIP (kamailio on loopback) and baresip answers,
playing the persona's recorded voice (flite, a voice other than the bot's Piper voice) and keying DTMF.

The persona reacts like a person: it waits until the bot has finished speaking, then switches baresip's audio
source to its next recorded answer (baresip's `ausrc` command), or presses keys (`sndcode`). What the bot hears
goes through the real pipeline: endpointing, Whisper ASR, the Rasa bot and action server, Piper TTS; every
turn and the call's audio go to the evidence log.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from duebot.accounts.store import AccountStore
from duebot.demo.sip_peers import Baresip, free_port, start_kamailio
from duebot.voice.audio import read_wav_8k, wav_bytes
from duebot.voice.runtime import VoiceRuntime
from duebot.voice.session import CallSession
from duebot.voice.transport import CallTransport


@dataclass(frozen=True)
class Step:
    say: str = ""  # spoken by the persona's recorded voice
    keys: str = ""  # or keyed on the phone's keypad (DTMF)


CALL_PERSONA = "P-CALL"
CALL_SCRIPT: tuple[Step, ...] = (  # the one who promises Friday, on the phone
    Step(say="Yes it is me"),  # one breath: a comma pause reads as two utterances to a 300 ms endpointer
    Step(keys="4472#"),
    Step(say="I will pay on Friday"),
    Step(say="Yes that is right"),
    Step(say="No thank you goodbye"),
)
GREETING = "Hello? Who is this?"
FLITE_VOICE = "slt"  # flite's female US voice; the bot speaks with Piper's en_US-joe


def flite_clip(text: str, path: Path, trailing_silence: float = 90.0) -> Path:
    """The persona's answer, then silence (baresip's file source stops at the end of the file)."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(["flite", "-voice", FLITE_VOICE, "-t", text, "-o", raw.name], check=True)
        pcm = read_wav_8k(raw.name)
    path.write_bytes(wav_bytes(b"\x00\x00" * 4000 + pcm + b"\x00\x00" * int(8000 * trailing_silence)))
    return path


class AccountRuntime(VoiceRuntime):
    """Tells the bot which account a call is about (the SIP agent's sessions carry only the carrier)."""

    accounts: dict[str, str]

    def session(self, call_id: str, transport: CallTransport, *, direction: str, sender: str | None = None,
                metadata: dict[str, Any] | None = None) -> CallSession:
        extra = {"account_id": self.accounts[sender]} if sender in getattr(self, "accounts", {}) else {}
        return super().session(call_id, transport, direction=direction, sender=sender,
                               metadata={**(metadata or {}), **extra})


def gate_hook(client: redis.Redis, store: AccountStore, account_id: str) -> Callable[[str, str], bool]:
    """The compliance gate reserves the call (cn pack: written contact first, 2 calls a day, quiet hours…)."""
    from duebot.channels.sms.sender import utc_iso
    from duebot.evidence.inbox import EvidenceInbox, InboxAuditSink
    from duebot.policies.reserve import LiveGate

    gate = LiveGate(client, "cn", sink=InboxAuditSink(EvidenceInbox(client)))

    def reserve(to: str, channel: str) -> bool:
        account = store.get_account(account_id)
        assert account is not None
        history = [{"at": utc_iso(e.at), "channel": "sms", "purpose": (e.detail or {}).get("purpose", "reminder"),
                    "debt_id": account_id, "outcome": "delivered"}
                   for e in store.events(account_id) if e.kind == "sms_sent"]
        request = {"now": utc_iso(time.time()),
                   "contact": {"channel": channel, "purpose": "collection", "to": account.phone,
                               "debt_id": account_id},
                   "subscriber": store.gate_subscriber(account_id), "history": history}
        return gate.reserve(request).id is not None

    return reserve


class PhoneCall:
    """kamailio + baresip + duebot's SIP agent for one outbound call; everything stopped by `close`."""

    def __init__(self, workdir: Path, runtime: AccountRuntime) -> None:
        from duebot.channels.sip.channel import SipAgent, SipConfig

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.kamailio, self.port = start_kamailio(workdir)
        self.phone: Baresip | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="demo-sip-loop")
        self.thread.start()
        rtp = free_port() // 2 * 2
        self.agent = SipAgent(SipConfig("127.0.0.1", self.port, "duebot", "none", local_port=free_port(),
                                        rtp_low=rtp, rtp_high=rtp + 20), runtime, self.loop)

    def start(self, user: str, greeting: Path) -> None:
        self.phone = Baresip(self.workdir, self.port, greeting, user=user, auto_answer=True)
        self.phone.start()
        self.phone.wait_registered()
        self.agent.start()

    def dial(self, user: str, sender: str) -> CallSession:
        return asyncio.run_coroutine_threadsafe(self.agent.call(user, sender=sender), self.loop).result(40)

    def close(self) -> None:
        from duebot.processes import stop

        for action in (lambda: self.phone and self.phone.stop(), self.agent.stop,
                       lambda: stop(self.kamailio, grace=3)):
            with contextlib.suppress(Exception):  # stop the rest whatever one of them did
                action()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _bot_turns(session: CallSession) -> int:
    return sum(1 for t in session.turns if t.speaker == "bot")


def wait_bot_done(session: CallSession, bot_turns: int, quiet: float = 1.5, timeout: float = 60.0) -> bool:
    """Until the bot has said something new (more than `bot_turns` turns) and then stayed silent for `quiet` s."""
    deadline = time.monotonic() + timeout
    last_change, seen = time.monotonic(), -1
    while time.monotonic() < deadline and not session.ended.is_set():
        count = _bot_turns(session)
        if count != seen or session.speaking:
            last_change, seen = time.monotonic(), count
        elif count > bot_turns and time.monotonic() - last_change >= quiet:
            return True
        time.sleep(0.1)
    return not session.ended.is_set()


def play_call(workdir: Path, rasa_url: str, client: redis.Redis, say: Callable[[str], None]) -> list[str]:
    """The persona's whole call; returns its transcript (what the bot heard and said)."""
    from duebot.evidence.inbox import EvidenceInbox
    from duebot.voice.evidence import InboxEvidenceSink

    workdir.mkdir(parents=True, exist_ok=True)
    store = AccountStore()
    started = time.monotonic()
    runtime = AccountRuntime.from_env(evidence=InboxEvidenceSink(EvidenceInbox(client)),
                                      reserve_contact=gate_hook(client, store, CALL_PERSONA), rasa_url=rasa_url)
    sender = f"voice:{CALL_PERSONA}"
    runtime.accounts = {sender: CALL_PERSONA}
    say(f"speech models loaded in {time.monotonic() - started:.1f}s (Whisper tiny.en, Piper en_US-joe)")
    clips = [flite_clip(step.say, workdir / f"answer-{i}.wav") if step.say else None
             for i, step in enumerate(CALL_SCRIPT)]
    call = PhoneCall(workdir, runtime)
    try:
        call.start("pcall", flite_clip(GREETING, workdir / "greeting.wav"))
        session = call.dial("pcall", sender)
        say(f"call answered by baresip ({session.answered_by or 'listening'}); persona speaks with flite/{FLITE_VOICE}")
        _follow_script(call, session, clips)
        assert call.phone is not None
        if not session.ended.is_set():
            call.phone.command("hangup")
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(session.ended.wait(), 15), call.loop).result(20)
        time.sleep(1.0)  # the call record reaches the inbox after the session ends
    finally:
        call.close()
    return [f"{'duebot' if t.speaker == 'bot' else 'subscriber (heard)'}: {t.text}"
            + (f"  [asr {t.asr_confidence:.2f}]" if t.asr_confidence is not None else "")
            + ("  [keypad]" if t.channel_input == "dtmf" else "") for t in session.turns]


def _follow_script(call: PhoneCall, session: CallSession, clips: list[Path | None]) -> None:
    assert call.phone is not None
    answered = 0  # bot turns before the persona's last action: the bot must say something new first
    for step, clip in zip(CALL_SCRIPT, clips, strict=True):
        if not wait_bot_done(session, answered):
            return
        answered = _bot_turns(session)
        if clip is not None:
            call.phone.command("ausrc", f"aufile,{clip}")
        for key in step.keys:
            call.phone.command("sndcode", key)
            time.sleep(0.25)
    wait_bot_done(session, answered, timeout=30)
