"""Property-based fuzz of the web service: schemathesis over its OpenAPI document, and hypothesis strategies on the
webhooks and the account import, against `duebot.web.create_app()` served by uvicorn on loopback, with a real
redis-server, the real evidence writer (`duebot evidence writer`) and, for Rasa, the scripted server that speaks its
REST channel (tests/voice/scripted_dialogue.py: the dialogue is not what is fuzzed here).

    .venv/bin/python evaluation/bench_fuzz.py                          # 10,000 requests
    .venv/bin/python evaluation/bench_fuzz.py --requests 2000 --seed 7 --out var/bench/fuzz

Lanes, each a share of the requests:
  openapi  schemathesis: positive and negative cases of every operation of /openapi.json; anonymous, and with an
           operator API token too when the API takes them (the `apiToken` scheme in the document)
  sms      POST /twilio/sms and /twilio/sms/status: signed as Twilio signs (channels/twilio_signature.py: HMAC-SHA1
           with the Auth Token, or HMAC-SHA256 with a SharedKey) with random parameters, and unsigned, wrongly
           signed or garbage ones (multipart with files, bytes that are not a form, JSON)
  voice    POST /twilio/voice/twiml the same way, and the Media Streams WebSocket as Twilio opens it (the signed
           webhook's TwiML names a one-use stream URL, the handshake is signed for it) or unsigned, signed for another
           URL, replayed or without a token; then random frames, `start` ones included (never a well-formed one,
           which would start a real call: the media format is always one duebot refuses)
  chat     POST /chat/api/message with valid, expired, forged, non-ASCII and garbage bearer tokens and random
           bodies (NaN and Infinity included); GET /chat with the same tokens
  payment  POST /payments/webhook: signed random bodies (link tokens of real accounts, random amounts including NaN,
           Infinity and 1E+1000000, random references, non-objects, non-JSON) and unsigned or garbage signatures
  import   POST /campaigns/import of generated CSV and JSON Lines files (good rows, rows with one field made bad,
           long fields, bytes that are not UTF-8, UTF-16, unbalanced quotes), then launch, pause, resume, cancel,
           preview, status and report of the campaign it made, in random order
  gate     POST /gate/check: realistic requests (one, or a batch) with a field made bad, and a pack named or not;
           every decision becomes an evidence record, so this lane feeds the evidence writer most

A failure is a response >= 500, a WebSocket the server closed with 1011, or a request it never answered. Each is
printed with a reproducer (a curl command; the body is saved under --out/reproducers/) and the server's traceback.
The evidence writer is watched throughout: if it stops, the record that stopped it is printed and counted, then
removed from the inbox and the writer restarted. At the end the inbox must drain and the log must verify.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import shlex
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "evaluation")]

import httpx  # noqa: E402
import redis  # noqa: E402
from _machine import command, machine  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from duebot.processes import (  # noqa: E402
    RunningService,
    ServiceFailed,
    ServiceSpec,
    free_port,
    start,
    stop,
    wait_ready,
)
from duebot.settings import RedisAddress  # noqa: E402

LANES = {"openapi": 0.36, "sms": 0.13, "voice": 0.10, "chat": 0.10, "payment": 0.11, "import": 0.14, "gate": 0.06}
SECRETS = {
    "DUEBOT_PAYMENT_SECRET": "fuzz-payment-secret-not-a-real-one-0001",
    "DUEBOT_CHAT_SECRET": "fuzz-chat-secret-not-a-real-one-0001",
    "TWILIO_AUTH_TOKEN": "fuzz-twilio-auth-token-0001",
    "TWILIO_WEBHOOK_SHARED_KEY_ID": "SKfuzz0001",
    "TWILIO_WEBHOOK_SHARED_KEY": "fuzz-twilio-shared-key-0001",
}
SEED_ACCOUNTS = 12  # half US, half CN: the numbers the signed SMS and the payment links are about
MAX_RESTARTS = 5  # evidence writer restarts after a stop, before the run gives up watching it


# ------------------------------------------------------------------------------------------ the service under test

def environment(data_dir: Path, redis_url: str, web_port: int, rasa_ports: tuple[int, int],
                voice: bool = True) -> dict[str, str]:
    """The variables the stack under test reads (set by the caller: `settings.export` or monkeypatch)."""
    return {
        "REDIS_URL": redis_url, "DUEBOT_DATA_DIR": str(data_dir),
        "DUEBOT_DB_URL": f"sqlite:///{data_dir / 'duebot.sqlite3'}", "DUEBOT_HOST": "127.0.0.1",
        "DUEBOT_WEB_PORT": str(web_port), "DUEBOT_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "DUEBOT_RASA_PORT": str(rasa_ports[0]), "DUEBOT_RASA_ZH_PORT": str(rasa_ports[1]),
        "DUEBOT_SERVED_LANGUAGES": "en,zh", "DUEBOT_TWILIO_VOICE": "1" if voice else "0", **SECRETS,
    }


def seed_accounts(path: Path) -> list[dict[str, str]]:
    rows = []
    for i in range(SEED_ACCOUNTS):
        cn = i % 2 == 1
        rows.append({"account_id": f"F-{i}", "name": f"Fuzz {i}", "amount": f"{100 + 37 * i}.50",
                     "phone": f"+86138001380{i:02d}" if cn else f"+1212555{100 + i:04d}", "due_date": "2026-10-01",
                     "currency": "CNY" if cn else "USD", "id_last4": "123X" if cn else "4472",
                     "timezone": "Asia/Shanghai" if cn else "America/New_York", "pack": "cn" if cn else "us",
                     "language": "zh" if cn else "en", "line_type": "mobile", "consent_ai_voice": "true"})
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _reset_process_caches() -> None:
    """Routers keep their clients per process; a fuzz run (or a test after another) starts from its own settings."""
    from duebot.campaigns import http as campaign_http
    from duebot.channels.chat import webchat
    from duebot.channels.sms import webhook
    from duebot.payments import http as payment_http

    payment_http._store.cache_clear()
    payment_http._inbox.cache_clear()
    webhook.get_channel.cache_clear()
    webchat.get_chat.cache_clear()
    campaign_http._campaigns, campaign_http._registry = None, None
    with contextlib.suppress(ImportError, AttributeError):
        from duebot.console import api_auth

        api_auth.set_api_tokens(None)
        api_auth._by_url.clear()


class ServerLog(logging.Handler):
    """Every warning and error the service logs, kept (not printed): tracebacks are matched to the request."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str, str | None]] = []
        self._kept_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        trace = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else None
        with self._kept_lock:
            self.records.append((record.name, record.levelno, record.getMessage()[:300], trace))

    def mark(self) -> int:
        with self._kept_lock:
            return len(self.records)

    def traceback_since(self, mark: int, wait: float = 1.0) -> str | None:
        deadline = time.monotonic() + wait
        while True:
            with self._kept_lock:
                for _, _, _, trace in self.records[mark:]:
                    if trace:
                        return trace
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)


class WebServer:
    """create_app() under uvicorn in a thread of this process, on a loopback port."""

    def __init__(self, port: int) -> None:
        import uvicorn

        from duebot.web import create_app

        self.app = create_app()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_config=None,
                                                    access_log=False, lifespan="on", ws="auto"))
        self.thread = threading.Thread(target=self.server.run, name="fuzz-web", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class EvidenceWatch:
    """The real evidence writer process; a stop is counted, diagnosed (which record), repaired and restarted."""

    def __init__(self, env: dict[str, str], data_dir: Path, client: redis.Redis) -> None:
        from duebot.evidence.inbox import writer_running

        self.client, self.data_dir = client, data_dir
        self.spec = ServiceSpec(name="evidence", argv=[sys.executable, "-m", "duebot.cli", "evidence", "writer"],
                                log_path=data_dir / "log" / "evidence.log", env=env,
                                ready=lambda: writer_running(client), ready_timeout=60)
        self.service: RunningService | None = None
        self.stops: list[dict[str, Any]] = []

    def start(self) -> None:
        self.service = start(self.spec)
        try:
            wait_ready(self.service)
        except ServiceFailed as exc:
            log = self.spec.log_path.read_text(errors="replace")[-2000:] if self.spec.log_path.exists() else ""
            raise ServiceFailed(f"{exc}\n{log}") from None

    def check(self) -> None:
        if self.service is None or self.service.process.poll() is None:
            return
        code = self.service.process.returncode
        log = self.spec.log_path.read_text(errors="replace")[-3000:] if self.spec.log_path.exists() else ""
        self.stops.append({"exit_code": code, "log_tail": log, "poison": self._remove_poison()})
        if len(self.stops) <= MAX_RESTARTS:
            self.start()
        else:
            self.service = None

    def _remove_poison(self) -> list[dict[str, Any]]:
        """The pending records that cannot be appended: what stopped the writer. They are removed (and printed)
        so that the restarted writer goes on with the rest."""
        from duebot.evidence.inbox import GROUP, STREAM, _decode
        from duebot.evidence.records import validate

        poison = []
        for entry_id, fields in self.client.xrange(STREAM, count=10_000):
            try:
                _, kind, body, conversation_id, _ = _decode(fields)
                body.pop("rid", None)
                validate(kind, body, conversation_id)
            except Exception as exc:  # noqa: BLE001 - whatever the writer choked on
                poison.append({"entry": entry_id.decode(), "error": f"{type(exc).__name__}: {exc}"[:300],
                               "fields": {k.decode(errors="replace"): v[:300].decode(errors="replace")
                                          for k, v in fields.items()}})
                self.client.xack(STREAM, GROUP, entry_id)
                self.client.xdel(STREAM, entry_id)
        return poison

    def drain(self, timeout: float = 120.0) -> bool:
        from duebot.evidence.inbox import STREAM

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if self.client.xlen(STREAM) == 0:
                return True
            time.sleep(0.25)
        return False

    def close(self) -> None:
        if self.service is not None:
            stop(self.service)


# ------------------------------------------------------------------------------------------ what was sent, what came

@dataclass
class Failure:
    lane: str
    method: str
    url: str
    status: int | str
    headers: dict[str, str]
    body: bytes
    trace: str | None
    note: str = ""

    def curl(self, body_file: Path | None) -> str:
        parts = ["curl", "-sS", "-X", self.method, self.url]
        for name, value in self.headers.items():
            if name.lower() not in ("content-length", "host", "accept-encoding", "connection", "user-agent"):
                parts += ["-H", f"{name}: {value}"]
        if self.body and body_file is not None:
            parts += ["--data-binary", f"@{body_file}"]
        return " ".join(shlex.quote(p) for p in parts)


@dataclass
class Recorder:
    base_url: str
    log: ServerLog
    watch: EvidenceWatch | None = None
    out: Path | None = None
    counts: Counter = field(default_factory=Counter)  # (lane, status) -> requests
    failures: list[Failure] = field(default_factory=list)
    not_sent: Counter = field(default_factory=Counter)  # refused by the HTTP client library itself, per lane
    sent: int = 0
    retried: list[str] = field(default_factory=list)  # sent again: the server had closed the pooled connection

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30.0)

    def _count(self, lane: str, status: int | str) -> None:
        self.counts[(lane, status)] += 1
        self.sent += 1
        if self.watch is not None and self.sent % 100 == 0:
            self.watch.check()

    def send(self, lane: str, method: str, path: str, *, params: Any = None, headers: Any = None,
             content: bytes | None = None, data: Any = None, files: Any = None, json_body: Any = None,
             note: str = "") -> httpx.Response | None:
        try:
            request = self.client.build_request(method, path, params=params, headers=headers, content=content,
                                                data=data, files=files, json=json_body)
            request.read()  # a multipart body is a stream: read it now, so a failure can show it
        except (ValueError, TypeError, UnicodeError, httpx.HTTPError):
            self.not_sent[lane] += 1
            return None
        mark = self.log.mark()
        try:
            try:
                response = self.client.send(request)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a pooled connection the server closed (it does after a 500): once more, on a new connection,
                # and listed in the summary (a request that itself drops the connection fails the second time too)
                self.retried.append(f"{lane} {method} {request.url}")
                response = self.client.send(request)
            status: int | str = response.status_code
        except httpx.LocalProtocolError:  # h11 would not put it on the wire (e.g. a header ending in a space)
            self.not_sent[lane] += 1
            return None
        except httpx.HTTPError as exc:
            response, status = None, f"no answer ({type(exc).__name__})"
        self._count(lane, status)
        if not isinstance(status, int) or status >= 500:
            self.fail(Failure(lane, method, str(request.url), status, _headers(request.headers), request.content,
                              self.log.traceback_since(mark), note))
        return response

    def record(self, lane: str, method: str, url: str, status: int | str, headers: dict[str, str], body: bytes,
               mark: int, note: str = "") -> None:
        """A request sent by another client (schemathesis, the WebSocket lane)."""
        self._count(lane, status)
        if (status >= 500) if isinstance(status, int) else (status == "ws 1011" or status.startswith("no answer")):
            self.fail(Failure(lane, method, url, status, headers, body, self.log.traceback_since(mark), note))

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)
        body_file = None
        if self.out is not None and failure.body:
            folder = self.out / "reproducers"
            folder.mkdir(parents=True, exist_ok=True)
            body_file = folder / f"{len(self.failures):04d}.bin"
            body_file.write_bytes(failure.body)
        print(f"\n!! {failure.lane}: {failure.status} on {failure.method} {failure.url} {failure.note}\n"
              f"   reproducer: {failure.curl(body_file)}\n   body: {failure.body[:300]!r}\n"
              f"   traceback: {(failure.trace or 'none logged').strip().splitlines()[-1:]}", flush=True)

    def histogram(self, lane: str | None = None) -> dict[str, int]:
        out: Counter = Counter()
        for (name, status), n in self.counts.items():
            if lane is None or name == lane:
                out[str(status)] += n
        return dict(sorted(out.items()))

    @property
    def server_errors(self) -> int:
        return len(self.failures)


def _headers(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items()}


# ------------------------------------------------------------------------------------------ strategies

NASTY = ["", " ", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1E+1000000", "1e-1000000", "-0",
         "0", "-1", "0.001", "1e2", "9" * 400, "0x1F", "1_000", "١٢٣", "１２３", "²³", "null", "true", "[]", "{}",
         "\x00", "a\x00b", "\u202e", "\ufeff", "\U0001F4A9", "X", "123X", "' OR '1'='1", "<script>x</script>",
         "../../etc/passwd", "%00", "%s%n", "\r\n", "A" * 5000, "退订", "STOP", " stop ", "HELP", "START", "TD",
         "2026-02-30", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00", "+1 212 555 0100",
         "+8613800138000", "12345", "+999", "Etc/GMT+99", "a" * 300]
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
nasty = st.one_of(st.sampled_from(NASTY), text)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)
signature_modes = st.sampled_from(["sha1"] * 8 + ["sha256"] * 3 + ["unsigned", "bad", "garbage", "settings"])


def twilio_headers(draw: Callable, url: str, params: Any, multi: bool) -> dict[str, Any]:
    """X-Twilio-Signature as Twilio computes it (channels/twilio_signature.py), or missing, wrong or garbage."""
    from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, SIGNATURE_SETTINGS_HEADER, RequestValidator

    from duebot.channels.twilio_signature import SIGNATURE_HEADER, sign

    mode = draw(signature_modes)
    if mode == "unsigned":
        return {}
    if mode == "garbage":
        return {SIGNATURE_HEADER: draw(header_text).encode("latin-1")}
    if mode == "settings":
        return {SIGNATURE_HEADER: "x", SIGNATURE_SETTINGS_HEADER: draw(header_text).encode("latin-1")}
    algorithm, secret = ((HMAC_SHA256, SECRETS["TWILIO_WEBHOOK_SHARED_KEY"]) if mode == "sha256" else
                         (HMAC_SHA1, SECRETS["TWILIO_AUTH_TOKEN"]))
    if multi:  # repeated names: sign() takes a mapping, so Twilio's validator signs every value, as it checks them
        from starlette.datastructures import FormData

        signature = RequestValidator(secret).compute_signature(url, FormData(params), algorithm)
    else:
        signature = sign(url, params, secret, algorithm)
    if mode == "bad":
        signature = signature[::-1]
    headers: dict[str, Any] = {SIGNATURE_HEADER: signature}
    if mode == "sha256":
        headers[SIGNATURE_SETTINGS_HEADER] = f"key={SECRETS['TWILIO_WEBHOOK_SHARED_KEY_ID']},algorithm={HMAC_SHA256}"
    return headers


@st.composite
def form_request(draw: Callable, base_url: str, paths: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    """A Twilio-style form POST: the realistic fields, of which none, one or a few are left out or made nasty,
    sometimes extra fields and a query string; sent as a form (mostly), multipart with a file, raw bytes or JSON;
    then signed as Twilio signs (mostly), or not, or wrongly."""
    path = draw(st.sampled_from(paths))
    params = {name: draw(values) for name, values in fields.items()}
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del params[name]
        else:
            params[name] = draw(nasty)
    if draw(st.integers(0, 3)) == 0:
        params.update(draw(st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), min_size=1,
                                                   max_size=12), nasty, min_size=1, max_size=2)))
    query = draw(st.one_of(st.none(), st.none(), st.dictionaries(st.sampled_from(["direction", "sender", "x"]),
                                                                 nasty, min_size=1, max_size=2)))
    url = base_url + path + (f"?{httpx.QueryParams(query)}" if query else "")
    multi = draw(st.integers(0, 9)) == 0 and bool(params)
    items = list(params.items()) + ([(next(iter(params)), draw(nasty))] if multi else [])
    headers = twilio_headers(draw, url, items if multi else params, multi)
    encoding = draw(st.sampled_from(["form"] * 8 + ["multipart", "bytes", "json"]))
    request: dict[str, Any] = {"path": path, "params": query, "headers": headers}
    if encoding == "form":
        request["content"] = str(httpx.QueryParams(items)).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif encoding == "multipart":
        request["data"] = dict(items)
        request["files"] = {draw(st.sampled_from(["Body", "MediaUrl0", "f"])): ("x.bin", draw(st.binary(max_size=64)))}
    elif encoding == "bytes":
        request["content"] = draw(st.binary(max_size=300))
        headers["Content-Type"] = draw(st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data",
                                                        "multipart/form-data; boundary=x", "text/plain"]))
    else:
        request["json_body"] = params
    return request


def sid(prefix: str) -> st.SearchStrategy[str]:
    return st.builds(lambda n: f"{prefix}{n:032x}", st.integers(0, 2**128 - 1))


def sms_fields(phones: list[str]) -> dict[str, Any]:
    return {
        "MessageSid": st.one_of(sid("SM"), st.sampled_from(["SM" + "0" * 32])),  # a replay now and then
        "AccountSid": st.just("AC" + "0" * 32),
        "From": st.one_of(st.sampled_from(phones), st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True)),
        "To": st.sampled_from(["+12125550000", *phones]),
        "Body": st.one_of(st.sampled_from(["STOP", "stop", "START", "HELP", "退订", "TD", "I can pay Friday",
                                           "wrong number", "我下周还", "A" * 2000]), text),
        "MessageStatus": st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed"]),
        "ErrorCode": st.sampled_from(["", "21610", "30003", "30007"]),
        "NumMedia": st.sampled_from(["0", "1"]),
    }


def voice_fields(phones: list[str]) -> dict[str, Any]:
    return {
        "CallSid": sid("CA"), "AccountSid": st.just("AC" + "0" * 32),
        "From": st.one_of(st.sampled_from(phones), st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True)),
        "To": st.sampled_from(["+12125550000", *phones]),
        "CallStatus": st.sampled_from(["ringing", "in-progress", "completed"]),
        "Direction": st.sampled_from(["inbound", "outbound-api"]),
    }


# --- rows of an import file

@st.composite
def good_row(draw: Callable) -> dict[str, str]:
    cn = draw(st.booleans())
    number = draw(st.integers(0, 10**8 - 1)) if cn else draw(st.integers(100, 199))
    return {
        "account_id": f"G-{draw(st.integers(0, 10**9)):x}",
        "name": draw(st.sampled_from(["Jane Doe", "王芳", "Ann O'Neil", "José Núñez", "Li, Wei"])),
        "phone": f"+86138{number:08d}" if cn else f"+1 212 555 {number:04d}",
        "amount": str(draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9000"), places=2))),
        "due_date": draw(st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 1))).isoformat(),
        "currency": "CNY" if cn else "USD",
        "id_last4": draw(st.from_regex(r"[0-9]{3}[0-9X]", fullmatch=True)),
        "birth_date": draw(st.one_of(st.just(""), st.dates(dt.date(1930, 1, 1), dt.date(2005, 1, 1)).map(str))),
        "segment": draw(st.sampled_from(["", "forgot", "cash_flow", "malicious", "dispute", "legacy"])),
        "timezone": draw(st.sampled_from(["", "Asia/Shanghai" if cn else "America/New_York"])),
        "pack": "cn" if cn else "us",
        "consent_ai_voice": draw(st.sampled_from(["true", "false", ""])),
    }


BAD_VALUES = {
    "amount": ["NaN", "Infinity", "-Infinity", "sNaN", "1E+1000000", "1e2", "-5", "0", "12.345", "99999999999",
               "١٢", "1" * 50, ""],
    "due_date": ["0001-01-01T00:00+01:00", "9999-12-31T23:00-05:00", "9999-12-31", "0001-01-01", "2026-02-30",
                 "20/10/2026", "2026-10-01T10:00:00"],
    "birth_date": ["2999-01-01", "1800-01-01", "yesterday"],
    "phone": ["12345", "+999", "A" * 300, "+1 212 555 0100\x00"],
    "id_last4": ["12X4", "abcd", "１２３４", "12345", "x"],
    "account_id": ["A" * 65, "id\x00", "id\nx", ""],
    "name": ["N" * 201, "bad\x07name"],
    "timezone": ["Mars/Olympus", "a" * 5000, "../etc/passwd", "UTC\x00"],
    "currency": ["DOLLARS", "$$$", "1"],
    "language": ["english-please", "e"],
    "broken_promises": ["²", "9" * 5000, "-1", "1.5"],
    "region": ["XX", "usa"],
    "consent_sms": ["maybe"],
}


@st.composite
def import_file(draw: Callable) -> tuple[str, bytes]:
    """(file name, bytes): CSV or JSON Lines of good rows and rows with one field made bad, or stranger files."""
    rows = draw(st.lists(good_row(), min_size=0, max_size=12))
    for row in rows:
        if draw(st.integers(0, 2)) == 0:
            name = draw(st.sampled_from(sorted(BAD_VALUES)))
            row[name] = draw(st.one_of(st.sampled_from(BAD_VALUES[name]), nasty))
    kind = draw(st.sampled_from(["csv"] * 4 + ["jsonl"] * 3 + ["utf16", "latin1", "quote", "huge", "bytes"]))
    header = ["account_id", "name", "phone", "amount", "due_date", "currency", "id_last4", "birth_date", "segment",
              "timezone", "pack", "consent_ai_voice", *sorted({k for r in rows for k in r} - set(good_row_fields))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, restval="")
    writer.writeheader()
    writer.writerows(rows)
    text_csv = buffer.getvalue()
    if kind == "jsonl":
        lines = []
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            if draw(st.integers(0, 3)) == 0:  # a JSON number, or a constant JSON does not have
                line = line.replace(json.dumps(row["amount"]), draw(st.sampled_from(
                    ["NaN", "Infinity", "-Infinity", "1E+1000000", "12.5", "[1]", "{}", "1" * 5000])), 1)
            lines.append(line)
        lines += draw(st.lists(st.sampled_from(["{broken", "[1, 2]", '"text"', "[" * 5000, "null"]), max_size=2))
        return draw(st.sampled_from(["a.jsonl", "b.ndjson", "c.json"])), "\n".join(lines).encode("utf-8", "replace")
    name = draw(st.sampled_from(["accounts.csv", "A.CSV", "noext", "x.txt", "客户 12月.csv"]))
    if kind == "utf16":
        return name, codecs.BOM_UTF16_LE + text_csv.encode("utf-16-le") + draw(st.sampled_from([b"", b"\x00"]))
    if kind == "latin1":
        return name, text_csv.encode("utf-8", "replace").replace(b"Jane", b"J\xe9ne\xff")
    if kind == "quote":
        return name, text_csv.replace(",", ',"', 1 + draw(st.integers(0, 3))).encode("utf-8", "replace")
    if kind == "huge":
        return name, text_csv.encode() + b'H-1,"' + b"N" * 140_000 + b'",+12125550199,1.00,2026-10-01\n'
    if kind == "bytes":
        return name, draw(st.binary(max_size=400))
    return name, text_csv.encode("utf-8", "replace")


good_row_fields = ("account_id", "name", "phone", "amount", "due_date", "currency", "id_last4", "birth_date",
                   "segment", "timezone", "pack", "consent_ai_voice")


# ------------------------------------------------------------------------------------------ the lanes

@dataclass
class Context:
    recorder: Recorder
    base_url: str
    accounts: list[dict[str, str]]
    operator_token: str | None  # an API token of an admin, when the operator API takes tokens
    campaigns: list[str] = field(default_factory=list)
    used_streams: list[str] = field(default_factory=list)  # stream URLs already opened: replays

    @property
    def phones(self) -> list[str]:
        return [a["phone"] for a in self.accounts]

    @property
    def operator_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.operator_token}"} if self.operator_token else {}


def _run(test: Callable, examples: int, run_seed: int) -> None:
    hypothesis_settings = settings(max_examples=examples, phases=[Phase.explicit, Phase.generate], deadline=None,
                                   database=None, suppress_health_check=list(HealthCheck), print_blob=False)
    seed(run_seed)(hypothesis_settings(test))()


def lane_sms(ctx: Context, examples: int, run_seed: int) -> None:
    @given(form_request(ctx.base_url, ["/twilio/sms", "/twilio/sms/status"], sms_fields(ctx.phones)))
    def test(request: dict[str, Any]) -> None:
        path = request.pop("path")
        ctx.recorder.send("sms", "POST", path, **request)
    _run(test, examples, run_seed)


def lane_voice(ctx: Context, examples: int, run_seed: int) -> None:
    @given(st.data())
    def test(data: st.DataObject) -> None:
        if data.draw(st.integers(0, 5)) == 0:
            _stream(ctx, data)
            return
        request = data.draw(form_request(ctx.base_url, ["/twilio/voice/twiml"], voice_fields(ctx.phones)))
        path = request.pop("path")
        ctx.recorder.send("voice", "POST", path, **request)
    _run(test, examples, run_seed)


def media_format() -> st.SearchStrategy[Any]:
    """Media formats of a `start` frame, none of them the one duebot takes (µ-law at 8 kHz): the stream's checks
    run, and no call session (no speech models, no dialogue) ever starts."""
    return st.one_of(
        st.fixed_dictionaries({"encoding": st.sampled_from(["audio/x-l16", "audio/pcm", ""]),
                               "sampleRate": st.sampled_from([8000, 16000])}),
        st.fixed_dictionaries({"encoding": st.just("audio/x-mulaw"),
                               "sampleRate": st.one_of(st.sampled_from([16000, 0, -1, 1e309, "8k", None, [], {}]),
                                                       nasty.filter(lambda t: t.strip() != "8000"))}),
        nasty.filter(bool), st.integers(), st.lists(st.integers(), min_size=1, max_size=2))


def stream_frames(call_sid: str) -> st.SearchStrategy[str]:
    start = st.builds(
        lambda sid_, fmt, stream, extra: json.dumps({"event": "start", "streamSid": stream, "start": {
            "callSid": sid_, "streamSid": stream, "mediaFormat": fmt, **extra}}),
        st.sampled_from([call_sid, call_sid, "CA" + "f" * 32]), media_format(), st.one_of(text, st.integers()),
        st.dictionaries(st.sampled_from(["customParameters", "tracks", "accountSid"]), st.one_of(nasty, st.none()),
                        max_size=2))
    return st.one_of(
        start, text, st.sampled_from(["{", "[]", "null", "1", '"x"', "{}", '{"event": 5}', '{"event": "media"}']),
        st.builds(lambda e, extra: json.dumps({"event": e, **extra}),
                  st.sampled_from(["connected", "media", "dtmf", "mark", "stop", "x"]),
                  st.dictionaries(st.sampled_from(["streamSid", "media", "start", "dtmf", "mark", "sequenceNumber"]),
                                  st.one_of(nasty, st.dictionaries(st.sampled_from(["payload", "digit", "name",
                                                                                    "track"]), nasty, max_size=2)),
                                  max_size=3)))


def _stream(ctx: Context, data: st.DataObject) -> None:
    """Twilio's way: the signed call webhook answers TwiML whose <Stream url> holds a one-use token; the handshake
    is signed for that URL. Then random frames. Also unsigned, wrongly signed, replayed and token-less handshakes."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    from duebot.channels.twilio_signature import SIGNATURE_HEADER, sign

    token = SECRETS["TWILIO_AUTH_TOKEN"]
    call_sid = data.draw(sid("CA"))
    params = {"CallSid": call_sid, "From": data.draw(st.sampled_from(ctx.phones)), "To": "+12125550000"}
    url = ctx.base_url + "/twilio/voice/twiml"
    answer = ctx.recorder.send("voice", "POST", "/twilio/voice/twiml", data=params,
                               headers={SIGNATURE_HEADER: sign(url, params, token)})
    base = ctx.base_url.replace("http://", "ws://") + "/twilio/voice/stream"
    granted = _stream_url(answer.text) if answer is not None and answer.status_code == 200 else None
    how = data.draw(st.sampled_from(["granted"] * 6 + ["unsigned", "other url", "replay", "no token", "garbage"]))
    ws_url = {"no token": base,
              "garbage": base + "/" + data.draw(st.from_regex(r"[A-Za-z0-9_-]{1,60}", fullmatch=True)),
              "replay": ctx.used_streams[-1] if ctx.used_streams else base}.get(how, granted or base)
    signed_for = base + "/x" if how == "other url" else ws_url
    headers = {} if how == "unsigned" else {SIGNATURE_HEADER: sign(signed_for, {}, token)}
    frames = data.draw(st.lists(stream_frames(call_sid), min_size=1, max_size=4))
    mark = ctx.recorder.log.mark()
    status: str
    try:
        with connect(ws_url, additional_headers=headers, open_timeout=10, close_timeout=5) as ws:
            try:
                for frame in frames:
                    ws.send(frame)
                ws.close()
                status = f"ws {ws.close_code or 1000}"
            except ConnectionClosed as closed:
                status = f"ws {closed.rcvd.code if closed.rcvd else 1006}"
    except InvalidStatus as refused:
        status = f"ws http {refused.response.status_code}"
    except ConnectionClosed as closed:
        status = f"ws {closed.rcvd.code if closed.rcvd else 1006}"
    except (OSError, TimeoutError) as exc:
        status = f"no answer ({type(exc).__name__})"
    if how == "granted" and granted:
        ctx.used_streams.append(granted)
    if status.startswith("ws http 5"):
        status = "ws 1011"
    ctx.recorder.record("voice", "WEBSOCKET", ws_url, status, {k: str(v) for k, v in headers.items()},
                        "\n".join(frames).encode("utf-8", "replace"), mark, note=f"{how}: frames={frames!r}"[:600])


def _stream_url(twiml: str) -> str | None:
    import re
    from html import unescape

    found = re.search(r'<Stream url="([^"]+)"', twiml)
    return unescape(found.group(1)) if found else None



def lane_chat(ctx: Context, examples: int, run_seed: int) -> None:
    from duebot.channels.chat.webchat import make_token

    key = SECRETS["DUEBOT_CHAT_SECRET"].encode()
    ids = [a["account_id"] for a in ctx.accounts]
    valid = st.sampled_from(ids).map(lambda a: make_token(a, key=key))
    invalid = st.one_of(
        st.sampled_from(ids).map(lambda a: make_token(a, ttl_hours=-1, key=key)),  # expired
        text.map(lambda a: make_token(a, key=key)),  # an account that does not exist
        st.sampled_from(ids).map(lambda a: make_token(a, key=b"another key")),  # forged
        valid.map(lambda t: t[:-3] + "AAA"), valid.map(lambda t: t.replace(".", "", 1)),
        valid.map(lambda t: t[:-2] + "é\xff"), valid.map(lambda t: "é" + t), header_text)  # not ASCII

    @given(st.data())
    def test(data: st.DataObject) -> None:
        bad = data.draw(st.sampled_from(["none"] * 4 + ["token"] * 2 + ["scheme", "body", "raw", "page"]))
        token = data.draw(invalid if bad == "token" else valid)
        if bad == "page":
            ctx.recorder.send("chat", "GET", "/chat", params={"t": data.draw(st.one_of(valid, invalid, invalid))})
            return
        scheme = data.draw(st.sampled_from(["bearer ", "Basic ", "", "Token ", "Bearer\t"])) if bad == "scheme" \
            else "Bearer "
        headers = {"Authorization": (scheme + token).encode("latin-1", "replace")}
        if bad == "raw":
            headers["Content-Type"] = "application/json"
            ctx.recorder.send("chat", "POST", "/chat/api/message", headers=headers,
                              content=data.draw(st.one_of(st.binary(max_size=200), st.sampled_from(
                                  [b'{"text": NaN}', b'{"text": "' + b"x" * 5000 + b'"}', b"[" * 5000]))))
            return
        body = data.draw(st.fixed_dictionaries({"text": st.one_of(text.filter(str.strip), st.sampled_from(NASTY))})
                         if bad != "body" else
                         st.dictionaries(st.sampled_from(["text", "x", "metadata"]),
                                         st.one_of(nasty, st.integers(), st.none(), st.lists(text, max_size=2)),
                                         max_size=3))
        ctx.recorder.send("chat", "POST", "/chat/api/message", headers=headers, json_body=body)
    _run(test, examples, run_seed)


def lane_payment(ctx: Context, examples: int, run_seed: int) -> None:
    from duebot.payments.links import make_link

    key = SECRETS["DUEBOT_PAYMENT_SECRET"].encode()
    ids = [a["account_id"] for a in ctx.accounts]
    good_token = st.builds(lambda a, ttl: make_link(a, Decimal("10.00"), ttl).url("https://p.example/x", key)
                           .split("?t=")[1], st.sampled_from(ids), st.sampled_from([72, 72, -1]))
    good = {"reference": sid("ch_"), "token": good_token,
            "amount": st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50"), places=2).map(str)}
    bad = {
        "reference": st.one_of(st.sampled_from(["ch_replayed", "R" * 65, "a b", "x\x00y", "😀", ""]), nasty,
                               st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
        "token": st.one_of(nasty, good_token.map(lambda t: t[:-2] + "00"), good_token.map(lambda t: t + "é"),
                           st.builds(lambda c: make_link("nobody", Decimal(c) / 100, 72).url("x", key).split("?t=")[1],
                                     st.integers(1, 10**6)), st.integers(), st.none()),
        "amount": st.one_of(st.sampled_from(["NaN", "Infinity", "-Infinity", "1E+1000000", "-5", "0", "0.001",
                                             "100000000", "1e2", "1,000.00"]),
                            st.integers(-10, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                            st.none(), st.lists(st.integers(), max_size=2), nasty),
    }

    @given(st.data())
    def test(data: st.DataObject) -> None:
        shape = data.draw(st.sampled_from(["good"] * 3 + ["one bad"] * 4 + ["constant", "raw", "array", "text"]))
        if shape in ("good", "one bad"):
            body = {name: data.draw(values) for name, values in good.items()}
            if shape == "one bad":
                name = data.draw(st.sampled_from(sorted(good)))
                if data.draw(st.integers(0, 4)) == 0:
                    del body[name]
                else:
                    body[name] = data.draw(bad[name])
            raw = json.dumps(body).encode()
        elif shape == "constant":  # a constant JSON does not have, where the amount goes
            token = json.dumps(data.draw(good_token))
            constant = data.draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1E+1000000"]))
            raw = f'{{"reference": "ch_nan", "token": {token}, "amount": {constant}}}'.encode()
        elif shape == "array":
            raw = json.dumps(data.draw(st.lists(nasty, max_size=3))).encode()
        elif shape == "text":
            raw = data.draw(st.sampled_from(['"x"', "1", "null", "[" * 3000, "{" * 3000, "{}"])).encode()
        else:
            raw = data.draw(st.binary(max_size=300))
        signing = data.draw(st.sampled_from(["signed"] * 8 + ["unsigned", "wrong", "garbage"]))
        headers: dict[str, Any] = {"Content-Type": "application/json"}
        if signing == "signed":
            headers["X-Duebot-Signature"] = hmac.new(key, raw, hashlib.sha256).hexdigest()
        elif signing == "wrong":
            headers["X-Duebot-Signature"] = hmac.new(b"wrong", raw, hashlib.sha256).hexdigest()
        elif signing == "garbage":
            headers["X-Duebot-Signature"] = data.draw(header_text).encode("latin-1")
        ctx.recorder.send("payment", "POST", "/payments/webhook", headers=headers, content=raw)
    _run(test, examples, run_seed)



GATE_REQUEST = {"now": "2026-11-24T20:00:00Z",
                "contact": {"channel": "sms", "purpose": "collection", "to": "+14155550101", "debt_id": "A-1"},
                "subscriber": {"id": "A-1", "line_type": "mobile", "consent": {"ai_voice": True, "sms": True},
                               "opted_out": False, "dispute_open": False, "timezone": "America/Los_Angeles"},
                "history": [{"at": "2026-11-20T18:00:00Z", "channel": "sms", "purpose": "reminder", "debt_id": "A-1",
                             "outcome": "delivered"}]}
GATE_PATHS = [("now",), ("contact",), ("contact", "channel"), ("contact", "purpose"), ("contact", "to"),
              ("contact", "debt_id"), ("subscriber",), ("subscriber", "id"), ("subscriber", "timezone"),
              ("subscriber", "consent"), ("subscriber", "consent", "sms"), ("subscriber", "opted_out"),
              ("history",), ("history", 0, "at"), ("history", 0, "channel"), ("history", 0, "outcome")]
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), nasty),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(text, inner, max_size=3)), max_leaves=8)


@st.composite
def gate_request(draw: Callable) -> Any:
    request = json.loads(json.dumps(GATE_REQUEST))
    for path in draw(st.lists(st.sampled_from(GATE_PATHS), max_size=2)):
        node = request
        for key in path[:-1]:
            node = node[key] if isinstance(node, dict | list) and (key in node if isinstance(node, dict) else
                                                                  key < len(node)) else {}
        if isinstance(node, dict):
            if draw(st.integers(0, 3)) == 0:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(st.one_of(json_values, st.sampled_from(
                    ["2026-13-45T99:00:00Z", "noon", "+999", "voice", "fax", "legal", "Mars/Olympus", 1e308])))
        elif isinstance(node, list) and isinstance(path[-1], int) and node:
            node[0] = draw(json_values)
    return request


def lane_gate(ctx: Context, examples: int, run_seed: int) -> None:
    @given(st.data())
    def test(data: st.DataObject) -> None:
        body = data.draw(st.one_of(gate_request(), gate_request(), st.lists(gate_request(), max_size=4)))
        pack = data.draw(st.sampled_from([None, None, "us", "cn", "us@1", "xx", "../us"]))
        raw = json.dumps(body).encode()
        if data.draw(st.integers(0, 9)) == 0:  # what JSON has not, where a number goes
            raw = raw.replace(b'"ai_voice": true', b'"ai_voice": NaN', 1).replace(b"1e+308", b"1E+1000000")
        ctx.recorder.send("gate", "POST", "/gate/check", params={"pack": pack} if pack else None, content=raw,
                          headers={"Content-Type": "application/json", **ctx.operator_headers})
    _run(test, examples, run_seed)


CAMPAIGN_OPS = ["launch", "launch", "pause", "resume", "cancel", "preview", "status", "status", "report", "plot"]


def lane_import(ctx: Context, examples: int, run_seed: int) -> None:
    @given(st.data())
    def test(data: st.DataObject) -> None:
        name, content = data.draw(import_file())
        params = {}
        if data.draw(st.integers(0, 5)) == 0:
            params = data.draw(st.dictionaries(st.sampled_from(["strategy", "name", "region"]),
                                               st.one_of(st.sampled_from(["default", "CN", "XX", "/etc/hosts",
                                                                          "/dev/null.yml", "x" * 300, "../../x.yml"]),
                                                         nasty), max_size=2))
        response = ctx.recorder.send("import", "POST", "/campaigns/import", params=params,
                                     headers=ctx.operator_headers,
                                     files={"file": (name, content, "application/octet-stream")})
        if response is None or response.status_code != 200:
            return
        campaign_id = response.json()["campaign_id"]
        ctx.campaigns.append(campaign_id)
        for op in data.draw(st.lists(st.sampled_from(CAMPAIGN_OPS), min_size=1, max_size=4)):
            if op == "plot":
                plot = data.draw(st.sampled_from(["funnel", "segments", "time", "x"]))
                ctx.recorder.send("import", "GET", f"/campaigns/{campaign_id}/report/{plot}.png",
                                  headers=ctx.operator_headers)
            elif op in ("preview", "status", "report"):
                ctx.recorder.send("import", "GET", f"/campaigns/{campaign_id}/{op}", headers=ctx.operator_headers)
            else:
                ctx.recorder.send("import", "POST", f"/campaigns/{campaign_id}/{op}", headers=ctx.operator_headers)
    _run(test, examples, run_seed)


def lane_openapi(ctx: Context, examples: int, run_seed: int) -> None:
    import requests
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{ctx.base_url}/openapi.json")
    session = requests.Session()
    callers: list[tuple[str, dict[str, str]]] = [("anonymous", {})]
    if ctx.operator_token:
        callers.append(("token", ctx.operator_headers))
    runs = [(mode, caller) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) for caller in callers]
    for i, (mode, (who, headers)) in enumerate(runs):
        share = examples // len(runs) + (1 if i < examples % len(runs) else 0)
        _run(_openapi_test(ctx, session, schema.as_strategy(generation_mode=mode), f"{who} {mode.value}", headers),
             share, run_seed + i)


def _openapi_test(ctx: Context, session: Any, cases: st.SearchStrategy, note: str,
                  headers: dict[str, str]) -> Callable[[], None]:
    import requests

    lane = "openapi:" + note.split()[0]

    @given(case=cases)
    def test(case: Any) -> None:
        mark = ctx.recorder.log.mark()
        try:
            response = case.call(base_url=ctx.base_url, session=session, headers=headers or None, timeout=30)
        except (requests.exceptions.InvalidHeader, UnicodeError):
            ctx.recorder.not_sent[lane] += 1
            return
        except requests.RequestException as exc:
            ctx.recorder.record(lane, str(case.method).upper(), case.path, f"no answer ({type(exc).__name__})",
                                {}, b"", mark, note=note)
            return
        request = response.request
        body = request.body or b""
        ctx.recorder.record(lane, request.method, request.url, response.status_code, dict(request.headers),
                            body.encode() if isinstance(body, str) else body, mark, note=note)
    return test


LANE_FUNCS: dict[str, Callable[[Context, int, int], None]] = {
    "openapi": lane_openapi, "sms": lane_sms, "voice": lane_voice, "chat": lane_chat, "payment": lane_payment,
    "import": lane_import, "gate": lane_gate,
}


# ------------------------------------------------------------------------------------------ a run

def canaries(ctx: Context) -> dict[str, dict[str, Any]]:
    """One request that must succeed per lane, sent first: without them a fuzz could bounce off a signature check
    for 10,000 requests and prove nothing. Each: what came back, and whether it is what a valid request gets."""
    from websockets.sync.client import connect

    from duebot.channels.chat.webchat import make_token
    from duebot.channels.twilio_signature import SIGNATURE_HEADER, sign
    from duebot.payments.links import make_link

    out: dict[str, dict[str, Any]] = {}

    def check(name: str, response: httpx.Response | None, status: int, needle: str = "") -> None:
        got = response.status_code if response is not None else None
        out[name] = {"status": got, "ok": got == status and needle in (response.text if response else "")}

    send, auth, phone = ctx.recorder.send, SECRETS["TWILIO_AUTH_TOKEN"], ctx.phones[0]
    sms = {"MessageSid": "SM" + "c" * 32, "AccountSid": "AC" + "0" * 32, "From": phone, "To": "+12125550000",
           "Body": "hello"}
    check("sms", send("canary", "POST", "/twilio/sms", data=sms,
                      headers={SIGNATURE_HEADER: sign(ctx.base_url + "/twilio/sms", sms, auth)}), 200, "I heard you")
    status = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", "To": phone}
    check("sms status", send("canary", "POST", "/twilio/sms/status", data=status, headers={
        SIGNATURE_HEADER: sign(ctx.base_url + "/twilio/sms/status", status, auth)}), 204)
    call = {"CallSid": "CA" + "c" * 32, "From": phone, "To": "+12125550000"}
    twiml = send("canary", "POST", "/twilio/voice/twiml", data=call,
                 headers={SIGNATURE_HEADER: sign(ctx.base_url + "/twilio/voice/twiml", call, auth)})
    check("voice twiml", twiml, 200, "<Stream url=")
    stream = _stream_url(twiml.text) if twiml is not None else None
    try:
        with connect(stream or "ws://127.0.0.1:1/", additional_headers={SIGNATURE_HEADER: sign(stream or "", {}, auth)},
                     open_timeout=10) as ws:
            ws.send(json.dumps({"event": "connected", "protocol": "Call"}))
            ws.close()
            out["voice stream"] = {"status": f"ws {ws.close_code}", "ok": ws.close_code == 1000}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        out["voice stream"] = {"status": f"{type(exc).__name__}: {exc}"[:200], "ok": False}
    chat_token = make_token(ctx.accounts[0]["account_id"], key=SECRETS["DUEBOT_CHAT_SECRET"].encode())
    check("chat", send("canary", "POST", "/chat/api/message", json_body={"text": "hello"},
                       headers={"Authorization": f"Bearer {chat_token}"}), 200, "I heard you")
    key = SECRETS["DUEBOT_PAYMENT_SECRET"].encode()
    link = make_link(ctx.accounts[0]["account_id"], Decimal("10.00"), 72).url("https://p.example/x", key)
    raw = json.dumps({"reference": "ch_canary", "token": link.split("?t=")[1], "amount": "10.00"}).encode()
    check("payment", send("canary", "POST", "/payments/webhook", content=raw, headers={
        "Content-Type": "application/json", "X-Duebot-Signature": hmac.new(key, raw, hashlib.sha256).hexdigest()}),
        200, '"applied":true')
    rows = ("account_id,name,phone,amount,due_date\nK-1,Kay,+1 212 555 0150,12.50,2026-10-01\n"
            "K-2,Kim,+1 212 555 0151,NaN,2026-10-01\nK-3,Kai,+1 212 555 0152,30.00,2026-10-01\n")
    imported = send("canary", "POST", "/campaigns/import", headers=ctx.operator_headers,
                    files={"file": ("canary.csv", rows.encode(), "text/csv")})
    check("import", imported, 200, '"imported":2')
    if imported is not None and imported.status_code == 200:
        campaign = imported.json()["campaign_id"]
        check("launch", send("canary", "POST", f"/campaigns/{campaign}/launch", headers=ctx.operator_headers), 200)
        check("status", send("canary", "GET", f"/campaigns/{campaign}/status", headers=ctx.operator_headers), 200)
    if ctx.operator_token:
        check("operator api, anonymous", send("canary", "GET", "/campaigns"), 401)
    return out


def operator_token(env: dict[str, str], schema: dict[str, Any]) -> str | None:
    """An API token of a campaign manager (the role that may use every operator route: view, preview, import,
    control, gate checks, metrics), when the operator API takes tokens (console/tokens.py, `apiToken`)."""
    if "apiToken" not in (schema.get("components", {}).get("securitySchemes") or {}):
        return None
    from duebot.accounts.store import AccountStore
    from duebot.console.roles import Role
    from duebot.console.tokens import ApiTokens
    from duebot.console.users import Users

    store = AccountStore(env["DUEBOT_DB_URL"])
    Users(store).add("fuzz_manager", Role.CAMPAIGN_MANAGER, "fuzz-manager-password-" + "x" * 16)
    return ApiTokens(store).create("fuzz_manager", "bench_fuzz").token


@dataclass
class Result:
    requests: int
    seconds: float
    histogram: dict[str, int]
    by_lane: dict[str, dict[str, int]]
    failures: list[Failure]
    not_sent: dict[str, int]
    writer_stops: list[dict[str, Any]]
    evidence: dict[str, Any]
    authenticated: bool
    campaigns_imported: int
    canaries: dict[str, dict[str, Any]]
    retried: list[str] = field(default_factory=list)

    @property
    def harness_ok(self) -> bool:
        return all(c["ok"] for c in self.canaries.values())

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "seconds": round(self.seconds, 1),
                "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else None,
                "server_errors": len(self.failures), "evidence_writer_stops": len(self.writer_stops),
                "status_histogram": self.histogram, "by_lane": self.by_lane, "not_sent_by_client": self.not_sent,
                "sent_again_after_a_closed_connection": self.retried[:50],
                "operator_api": "fuzzed with a campaign manager's API token and anonymously" if self.authenticated else
                "no API tokens in this build: fuzzed as the routes are (anonymously)",
                "campaigns_imported": self.campaigns_imported, "canaries": self.canaries,
                "evidence": self.evidence,
                "failures": [{"lane": f.lane, "status": str(f.status), "method": f.method, "url": f.url,
                              "note": f.note, "body": f.body[:500].decode("utf-8", "replace"),
                              "traceback": f.trace} for f in self.failures],
                "writer_stops": self.writer_stops}


def run_fuzz(redis_address: RedisAddress, data_dir: Path, total: int, run_seed: int, *,
             set_env: Callable[[dict[str, str]], None], out: Path | None = None, voice: bool = True,
             lanes: dict[str, float] | None = None) -> Result:
    """Fuzz until `total` requests were sent. `set_env` puts the stack's variables in this process's environment
    (the benchmark exports them; a test uses monkeypatch)."""
    from duebot.accounts.importer import import_csv
    from duebot.accounts.store import AccountStore
    from duebot.evidence.fsck import verify_directory
    from tests.voice.scripted_dialogue import ScriptedRasa

    lanes = lanes or LANES
    data_dir.mkdir(parents=True, exist_ok=True)
    client = redis.Redis(host=redis_address.host, port=redis_address.port, password=redis_address.password or None)
    log = ServerLog()
    root = logging.getLogger()
    root.addHandler(log)
    watch: EvidenceWatch | None = None
    started = time.perf_counter()
    try:
        with ScriptedRasa() as rasa_en, ScriptedRasa() as rasa_zh:
            port = free_port()
            rasa_ports = (int(rasa_en.url.rsplit(":", 1)[1]), int(rasa_zh.url.rsplit(":", 1)[1]))
            env = environment(data_dir, redis_address.url, port, rasa_ports, voice)
            set_env(env)
            _reset_process_caches()
            accounts = seed_accounts(data_dir / "seed.csv")
            report = import_csv(data_dir / "seed.csv", AccountStore(env["DUEBOT_DB_URL"]))
            assert report.created == SEED_ACCOUNTS, report.errors
            watch = EvidenceWatch(env, data_dir, client)
            watch.start()
            with WebServer(port) as web:
                token = operator_token(env, web.app.openapi())
                recorder = Recorder(web.url, log, watch, out)
                ctx = Context(recorder, web.url, accounts, token)
                checked = canaries(ctx)
                print("canaries: " + ", ".join(f"{k} {v['status']}{'' if v['ok'] else ' (NOT OK)'}"
                                               for k, v in checked.items()), flush=True)
                round_no = 0
                while recorder.sent < total:
                    remaining = total - recorder.sent
                    for name, share in lanes.items():
                        examples = max(1, round(remaining * share / sum(lanes.values())))
                        before = recorder.sent
                        LANE_FUNCS[name](ctx, examples, run_seed * 1000 + round_no * 10 + list(LANE_FUNCS).index(name))
                        print(f"{name:8s} {recorder.sent - before:6,d} requests  (total {recorder.sent:,d}, "
                              f"{time.perf_counter() - started:6.1f} s)", flush=True)
                    round_no += 1
                seconds = time.perf_counter() - started
                drained = watch.drain()
                watch.close()
                check = verify_directory(data_dir / "evidence")
                evidence = {"inbox_drained": drained, "log_verifies": check.ok, "log_problems": check.errors[:5],
                            "records": check.size}
                seen = sorted({lane for lane, _ in recorder.counts})
                return Result(recorder.sent, seconds, recorder.histogram(),
                              {lane: recorder.histogram(lane) for lane in seen}, recorder.failures,
                              dict(recorder.not_sent), watch.stops, evidence, token is not None, len(ctx.campaigns),
                              checked, recorder.retried)
    finally:
        root.removeHandler(log)
        if watch is not None:
            watch.close()
        _reset_process_caches()


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[RedisAddress]:
    from duebot.redis_server import embedded_redis_spec

    address = RedisAddress("127.0.0.1", free_port(), 0, "")
    service = start(embedded_redis_spec(address, tmp / "redis", tmp / "redis.log"))
    try:
        wait_ready(service)
        yield address
    finally:
        stop(service)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="requests to send in all (default 10,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("var/bench/fuzz"))
    parser.add_argument("--no-voice", action="store_true", help="leave out the Twilio voice router (no ASR/TTS load)")
    args = parser.parse_args()
    import signal
    import warnings

    from duebot.settings import export

    # `timeout`, or a CI runner, stops with SIGTERM: unwind, so redis-server and the evidence writer are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    warnings.filterwarnings("ignore", message="No artists with labels")  # the plots of a campaign with no outcome
    print(f"command: {command()}\nmachine: {machine()}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="duebot-fuzz-") as tmp, redis_server(Path(tmp)) as address:
        result = run_fuzz(address, Path(tmp) / "data", args.requests, args.seed, set_env=export, out=args.out,
                          voice=not args.no_voice)
    summary = {"command": command(), "machine": machine(), "seed": args.seed, **result.summary()}
    (args.out / "bench.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("failures", "writer_stops")}, indent=2,
                     ensure_ascii=False))
    for stop_ in result.writer_stops:
        print(f"\n!! evidence writer stopped (exit {stop_['exit_code']}); records it could not append:\n"
              f"{json.dumps(stop_['poison'], indent=2, ensure_ascii=False)[:3000]}\nlog tail:\n{stop_['log_tail']}")
    print(f"\n{result.requests:,d} requests in {result.seconds:.1f} s: {len(result.failures)} responses >= 500, "
          f"{len(result.writer_stops)} evidence-writer stops")
    if not result.harness_ok:
        print("!! a canary failed: the fuzz did not get past the service's front door, fix the harness first")
    if result.failures or result.writer_stops or not result.evidence["log_verifies"] or not result.harness_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
