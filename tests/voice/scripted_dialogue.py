"""A scripted bot behind a real HTTP server that speaks Rasa's REST webhook wire format.

The voice pipeline's real `RasaRestDialogue` talks to it, so tests exercise the HTTP path without
depending on the (slow, separately developed) Rasa model.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GREETING = "Hello, this is Duebot calling for your phone company."
DISCLOSURE = "This call is recorded for quality and legal purposes."
SIP_GREETING = "Hello, this is Duebot. Please tell me who you are."
IDENTITY = "Am I speaking with Alex? Please say yes or no."
MENU = ("Thank you Alex. Your balance is $58.20, overdue since 2025-03-15. To pay now, press 1. "
        "For a payment plan, press 2. To speak to an agent, press 0. You can also just tell me what you would like.")


def script(message: str) -> list[dict[str, Any]]:
    text = message.strip().lower()
    if text == "/sip":
        return [{"text": SIP_GREETING}]
    if text == "/short":
        return [{"text": "I heard you."}]
    if text.startswith("/greet"):
        # Rasa's REST channel sends text and custom as two messages; the marker applies to the text before it.
        return [{"text": GREETING}, {"text": DISCLOSURE}, {"custom": {"uninterruptible": True}}, {"text": IDENTITY}]
    if re.fullmatch(r"\d{4,}", text):
        return [{"text": f"Thank you, code {text} is confirmed."}]
    if text in ("1", "2", "0"):
        return [{"text": f"You chose option {text}."}]
    if "bye" in text:
        return [{"text": "Goodbye."}, {"custom": {"hangup": True}}]
    if re.search(r"\byes\b|\byeah\b|speaking", text):
        return [{"text": MENU}]
    return [{"text": "I heard you."}]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a 30-call benchmark connects in bursts (the default backlog is 5)


class ScriptedRasa:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/webhooks/rest/webhook":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                messages = [{"recipient_id": body["sender"], **m} for m in script(body["message"])]
                data = json.dumps(messages).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedRasa:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def messages(self, sender: str | None = None) -> list[str]:
        return [r["message"] for r in self.requests if sender is None or r["sender"] == sender]
