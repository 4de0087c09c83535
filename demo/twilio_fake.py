"""A local HTTP fake of Twilio's REST API (Messages.json, Calls.json) for tests and the offline demo.

It speaks Twilio's wire formats: form-encoded requests, HTTP Basic auth with the account SID and auth token,
Twilio's JSON resources and error bodies ({code, message, more_info, status}) with the real error codes, and
status callbacks POSTed form-encoded and signed with X-Twilio-Signature exactly as Twilio signs them (so the
receiving side's validator is exercised, not bypassed). Point the real `twilio` client at it with
`duebot.channels.sms.sender.RebasedHttpClient` (or TWILIO_API_BASE). Standard library only; one thread per
request; callbacks go out from a background thread in order, like Twilio's (sent → delivered).

    python -m duebot.demo.twilio_fake --port 8099 --auth-token secret --from-number +15005550006
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import queue
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from duebot.channels.sms.keywords import Keyword, KeywordMatcher
from duebot.channels.sms.segments import segment_info
from duebot.channels.twilio_signature import SIGNATURE_HEADER, sign

logger = logging.getLogger("duebot.twilio_fake")
API = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_ROUTE = re.compile(rf"^/{API}/Accounts/(?P<account>[^/]+)/(?P<kind>Messages|Calls)(?:/(?P<sid>[^/.]+))?\.json$")


class TwilioError(Exception):
    """Raised inside the fake and rendered as Twilio's JSON error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}", "status": self.status}


@dataclass
class FakeConfig:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"
    numbers: tuple[str, ...] = ("+15005550006",)  # the account's own numbers ('From')
    messaging_services: tuple[str, ...] = ("MG" + "0" * 32,)
    allowed_prefixes: tuple[str, ...] = ()  # geo permissions; empty = every country
    undeliverable: frozenset[str] = frozenset()  # 'To' numbers whose texts end 'undelivered' (30003)
    callback_delay: float = 0.0  # seconds between status callbacks
    shared_key: tuple[str, str] | None = None  # (SharedKey sid, secret): sign callbacks with HMAC-SHA256


@dataclass
class FakeState:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsubscribed: set[str] = field(default_factory=set)  # Advanced Opt-Out: numbers that texted STOP
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # what the fake POSTed, with the reply code
    lock: threading.Lock = field(default_factory=threading.Lock)


def _now() -> str:
    return formatdate(time.time(), usegmt=False).replace("-0000", "+0000")


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class TwilioFake:
    """The server; `start()` runs it on 127.0.0.1 in a daemon thread, `url` is its base URL."""

    def __init__(self, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or FakeConfig()
        self.state = FakeState()
        self._callbacks: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self._opt_out = KeywordMatcher()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug(fmt, *args)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._dispatch(self, "POST")

            def do_GET(self) -> None:  # noqa: N802
                fake._dispatch(self, "GET")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TwilioFake:
        for target in (self.server.serve_forever, self._deliver_callbacks):
            thread = threading.Thread(target=target, daemon=True, name=f"twilio-fake-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._callbacks.put(None)
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> TwilioFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(handler.path).path
        try:
            if method == "GET" and path == "/fake/state":
                self._reply(handler, 200, self.snapshot())
                return
            route = _ROUTE.match(path)
            if route is None:
                raise TwilioError(404, 20404, f"The requested resource {path} was not found")
            self._authenticate(handler, route["account"])
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode(), keep_blank_values=True).items()}
            kind, sid = route["kind"], route["sid"]
            if method == "GET" and sid:
                table = self.state.messages if kind == "Messages" else self.state.calls
                if sid not in table:
                    raise TwilioError(404, 20404, f"The requested resource {path} was not found")
                self._reply(handler, 200, table[sid])
            elif method == "POST" and not sid:
                created = self.create_message(params) if kind == "Messages" else self.create_call(params)
                self._reply(handler, 201, created)
            else:
                raise TwilioError(405, 20004, "Method not allowed")
        except TwilioError as exc:
            self._reply(handler, exc.status, exc.body())

    def _authenticate(self, handler: BaseHTTPRequestHandler, account: str) -> None:
        header = handler.headers.get("Authorization", "")
        try:
            scheme, _, encoded = header.partition(" ")
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            scheme = user = password = ""
        if scheme != "Basic" or user != self.config.account_sid or password != self.config.auth_token:
            raise TwilioError(401, 20003, "Authenticate")
        if account != user:
            raise TwilioError(403, 20003, "Authenticate")  # credentials of another account

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Twilio-Request-Id", _sid("RQ"))
        handler.end_headers()
        handler.wfile.write(data)

    # ------------------------------------------------------------------ resources

    def _check_to(self, to: str | None, missing_code: int, missing: str) -> str:
        if not to:
            raise TwilioError(400, missing_code, missing)
        if not E164.match(to):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        return to

    def create_message(self, p: dict[str, str]) -> dict[str, Any]:
        to = self._check_to(p.get("To"), 21604, "A 'To' phone number is required.")
        sender, service = p.get("From"), p.get("MessagingServiceSid")
        if not sender and not service:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if service and service not in self.config.messaging_services:
            raise TwilioError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender and sender not in self.config.numbers:
            raise TwilioError(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound "
                                          "phone number or short code for your account.")
        body = p.get("Body")
        if not body and not p.get("MediaUrl"):
            raise TwilioError(400, 21602, "Message body is required.")
        if body and len(body) > 1600:
            raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if self.config.allowed_prefixes and not to.startswith(self.config.allowed_prefixes):
            raise TwilioError(400, 21408, "Permission to send an SMS has not been enabled for the region "
                                          f"indicated by the 'To' number: {to}.")
        with self.state.lock:
            if to in self.state.unsubscribed:
                raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
        sid, created = _sid("SM"), _now()
        message = {
            "account_sid": self.config.account_sid, "api_version": API, "body": body or "",
            "date_created": created, "date_sent": None, "date_updated": created, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": sender or self.config.numbers[0],
            "messaging_service_sid": service, "num_media": "0", "num_segments": str(segment_info(body or "").segments),
            "price": None, "price_unit": "USD", "sid": sid, "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"/{API}/Accounts/{self.config.account_sid}/Messages/{sid}/Media.json"},
            "to": to, "uri": f"/{API}/Accounts/{self.config.account_sid}/Messages/{sid}.json",
        }
        with self.state.lock:
            self.state.messages[sid] = message
        if callback := p.get("StatusCallback"):
            final = "undelivered" if to in self.config.undeliverable else "delivered"
            for status in ("sent", final):
                params = {"AccountSid": self.config.account_sid, "ApiVersion": API, "From": message["from"],
                          "MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status, "To": to}
                if status == "undelivered":
                    params["ErrorCode"] = "30003"
                self._callbacks.put((callback, params))
        return dict(message)

    def create_call(self, p: dict[str, str]) -> dict[str, Any]:
        to = self._check_to(p.get("To"), 21201, "No 'To' number is specified")
        sender = p.get("From")
        if not sender:
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if sender not in self.config.numbers:
            raise TwilioError(400, 21210, f"The source phone number provided, {sender}, is not yet verified for "
                                          "your account.")
        if not p.get("Url") and not p.get("Twiml") and not p.get("ApplicationSid"):
            raise TwilioError(400, 21205, "Url parameter is required.")
        if self.config.allowed_prefixes and not to.startswith(self.config.allowed_prefixes):
            raise TwilioError(400, 21215, f"Account not authorized to call {to}. Perhaps you need to enable some "
                                          "international permissions.")
        sid, created = _sid("CA"), _now()
        base = f"/{API}/Accounts/{self.config.account_sid}/Calls/{sid}"
        call = {
            "account_sid": self.config.account_sid, "annotation": None, "answered_by": None, "api_version": API,
            "caller_name": None, "date_created": created, "date_updated": created, "direction": "outbound-api",
            "duration": None, "end_time": None, "forwarded_from": None, "from": sender, "from_formatted": sender,
            "group_sid": None, "parent_call_sid": None, "phone_number_sid": None, "price": None, "price_unit": "USD",
            "sid": sid, "start_time": None, "status": "queued",
            "subresource_uris": {"recordings": f"{base}/Recordings.json"},
            "to": to, "to_formatted": to, "trunk_sid": None,
            "uri": f"{base}.json", "queue_time": "0",
        }
        with self.state.lock:
            self.state.calls[sid] = call
        if callback := p.get("StatusCallback"):
            # Twilio sends only `completed` unless StatusCallbackEvent asks for more.
            wanted = set(p.get("StatusCallbackEvent", "completed").split()) or {"completed"}
            for status in ("initiated", "ringing", "in-progress", "completed"):
                if status in wanted or (status == "in-progress" and "answered" in wanted):
                    params = {"AccountSid": self.config.account_sid, "ApiVersion": API, "CallSid": sid,
                              "CallStatus": status, "Direction": "outbound-api", "From": sender, "To": to}
                    if status == "completed":
                        params["CallDuration"] = "0"
                    self._callbacks.put((callback, params))
        return dict(call)

    # ------------------------------------------------------------------ webhooks

    def signed_headers(self, url: str, params: dict[str, str]) -> dict[str, str]:
        if self.config.shared_key:
            key_sid, secret = self.config.shared_key
            return {SIGNATURE_HEADER: sign(url, params, secret, "HMAC_SHA256"),
                    "X-Twilio-Webhooks-Signature-Settings": f"key={key_sid},algorithm=HMAC_SHA256"}
        return {SIGNATURE_HEADER: sign(url, params, self.config.auth_token)}

    def post_webhook(self, url: str, params: dict[str, str], timeout: float = 15.0) -> tuple[int, bytes]:
        """POST form params to a webhook, signed like Twilio; (status, body)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1",
                   "I-Twilio-Idempotency-Token": secrets.token_hex(8), **self.signed_headers(url, params)}
        request = urllib.request.Request(url, urllib.parse.urlencode(params).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URLs
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def inbound_sms(self, url: str, from_: str, body: str, to: str | None = None,
                    sid: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        """A subscriber texts the account's number: Twilio's inbound Messaging webhook. Like Advanced Opt-Out,
        STOP adds the sender to the unsubscribed list (outbound then fails with 21610) and START removes it."""
        keyword = self._opt_out.classify(body)
        with self.state.lock:
            if keyword is Keyword.OPT_OUT:
                self.state.unsubscribed.add(from_)
            elif keyword is Keyword.OPT_IN:
                self.state.unsubscribed.discard(from_)
        sid = sid or _sid("SM")
        params = {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received",
                  "Body": body, "To": to or self.config.numbers[0], "NumSegments": str(segment_info(body).segments),
                  "MessageSid": sid, "AccountSid": self.config.account_sid, "From": from_, "ApiVersion": API}
        status, reply = self.post_webhook(url, params)
        return status, reply, params

    def _deliver_callbacks(self) -> None:
        while (item := self._callbacks.get()) is not None:
            url, params = item
            if self.config.callback_delay:
                time.sleep(self.config.callback_delay)
            try:
                status, _ = self.post_webhook(url, params)
            except OSError as exc:
                status = -1
                logger.warning("status callback to %s failed: %s", url, exc)
            with self.state.lock:
                self.state.callbacks.append({"url": url, "params": params, "response": status})
                sid = params.get("MessageSid") or params.get("CallSid")
                table = self.state.messages if "MessageSid" in params else self.state.calls
                if sid in table:
                    table[sid]["status"] = params.get("MessageStatus") or params.get("CallStatus")

    def wait_callbacks(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.state.lock:
                if len(self.state.callbacks) >= count:
                    return list(self.state.callbacks)
            time.sleep(0.02)
        raise TimeoutError(f"{len(self.state.callbacks)} of {count} status callbacks after {timeout}s")

    def snapshot(self) -> dict[str, Any]:
        with self.state.lock:
            return {"messages": list(self.state.messages.values()), "calls": list(self.state.calls.values()),
                    "unsubscribed": sorted(self.state.unsubscribed), "callbacks": list(self.state.callbacks)}


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local fake of Twilio's REST API (Messages, Calls)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=FakeConfig.account_sid)
    parser.add_argument("--auth-token", default=FakeConfig.auth_token)
    parser.add_argument("--from-number", action="append", help="the account's numbers (repeatable)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = FakeConfig(account_sid=args.account_sid, auth_token=args.auth_token,
                        numbers=tuple(args.from_number or FakeConfig.numbers))
    fake = TwilioFake(config, args.host, args.port).start()
    print(f"twilio fake listening on {fake.url} (account {config.account_sid}); state at {fake.url}/fake/state",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
