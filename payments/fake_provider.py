"""A local payment provider for tests and the demo (as demo/twilio_fake.py is for Twilio): a real HTTP server on a
free loopback port speaking payments/provider.py's protocol.

- POST /checkouts (signed by duebot): a checkout for a link's token → {"id", "redirect_url"};
- GET /checkout/<id>: the provider's page, the amount and a "Pay" button (a form POST);
- POST /checkout/<id>/pay: "paid": the signed confirmation {"reference", "token", "amount"} is POSTed to duebot's
  `POST /payments/webhook` exactly as a real provider would, retried (with back-off) until duebot answers 2xx or a
  4xx other than 429, then the subscriber is sent back to the return URL.

`pay(id, amount=None)` does the same from code (a partial amount too), `redeliver(id)` sends an acknowledged
confirmation again (a provider's duplicate delivery), `deliveries` lists every POST made and its answer.

    python -m duebot.payments.fake_provider [--port N]   # then DUEBOT_PAYMENT_PROVIDER_URL=<printed URL>
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from duebot.payments.links import sign


@dataclass
class FakeCheckout:
    id: str
    token: str
    amount: Decimal
    currency: str
    webhook_url: str
    return_url: str
    status: str = "open"  # open → paid
    references: dict[str, Decimal] = field(default_factory=dict)  # every payment taken: reference → amount


class FakeProvider:
    def __init__(self, key: bytes | None = None, host: str = "127.0.0.1", port: int = 0, retries: int = 5,
                 backoff: float = 0.2) -> None:
        self.key, self.retries, self.backoff = key, retries, backoff
        self.checkouts: dict[str, FakeCheckout] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                provider._get(self)

            def do_POST(self) -> None:  # noqa: N802
                provider._post(self)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------ HTTP
    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
               headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _json(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        self._reply(handler, status, json.dumps(body).encode(), "application/json")

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = handler.path.split("?", 1)[0]
        if path == "/checkouts":
            given = handler.headers.get("X-Duebot-Signature", "")
            if not given.isascii() or not hmac.compare_digest(sign(raw, self.key), given):
                self._json(handler, 403, {"error": "bad signature"})
                return
            try:
                body = json.loads(raw)
                checkout = FakeCheckout(f"co_{secrets.token_hex(6)}", body["token"], Decimal(body["amount"]),
                                        body["currency"], body["webhook_url"], body["return_url"])
            except (ValueError, KeyError, TypeError, ArithmeticError):
                self._json(handler, 422, {"error": "invalid checkout"})
                return
            with self.lock:
                self.checkouts[checkout.id] = checkout
            self._json(handler, 200, {"id": checkout.id, "redirect_url": f"{self.url}/checkout/{checkout.id}"})
            return
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "checkout" and parts[2] == "pay" and parts[1] in self.checkouts:
            checkout = self.pay(parts[1])
            self._reply(handler, 303, b"", "text/plain", {"Location": checkout.return_url})
            return
        self._json(handler, 404, {"error": "not found"})

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = handler.path.split("?", 1)[0].strip("/").split("/")
        checkout = self.checkouts.get(parts[1]) if len(parts) == 2 and parts[0] == "checkout" else None
        if checkout is None:
            self._json(handler, 404, {"error": "not found"})
            return
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Fake provider</title></head><body>"
                f"<h1>Fake payment provider</h1><p id='amount'>{html.escape(f'{checkout.amount:.2f}')} "
                f"{html.escape(checkout.currency)}</p><p id='status'>{checkout.status}</p>"
                f"<form method='post' action='/checkout/{checkout.id}/pay'><button type='submit'>Pay</button></form>"
                f"</body></html>")
        self._reply(handler, 200, page.encode(), "text/html; charset=utf-8")

    # ------------------------------------------------------------ paying and confirming
    def pay(self, checkout_id: str, amount: Decimal | None = None, wait: bool = True) -> FakeCheckout:
        """Take a payment (the whole amount, or part of it) and confirm it to duebot; `wait` until delivered."""
        checkout = self.checkouts[checkout_id]
        with self.lock:
            reference = f"fake_{checkout_id}_{len(checkout.references) + 1}"
            checkout.references[reference] = amount or checkout.amount
            checkout.status = "paid"
        body = {"reference": reference, "token": checkout.token, "amount": str(checkout.references[reference])}
        worker = threading.Thread(target=self._deliver, args=(checkout.webhook_url, body), daemon=True)
        worker.start()
        if wait:
            worker.join(timeout=self.backoff * 2 ** self.retries + 30)
        return checkout

    def redeliver(self, checkout_id: str) -> int:
        """Send the latest confirmation of a checkout again, as providers do; duebot's answer status."""
        checkout = self.checkouts[checkout_id]
        reference = list(checkout.references)[-1]
        body = {"reference": reference, "token": checkout.token, "amount": str(checkout.references[reference])}
        return self._deliver(checkout.webhook_url, body)

    def _deliver(self, url: str, body: dict[str, str]) -> int:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Duebot-Signature": sign(raw, self.key)}
        status = 0
        for attempt in range(self.retries + 1):
            try:
                response = httpx.post(url, content=raw, headers=headers, timeout=10.0)
                status = response.status_code
                answer: Any = response.text[:500]
            except httpx.HTTPError as exc:
                status, answer = 0, f"{type(exc).__name__}"
            with self.lock:
                self.deliveries.append({"reference": body["reference"], "attempt": attempt + 1, "status": status,
                                        "answer": answer})
            if 200 <= status < 300 or (400 <= status < 500 and status != 429):
                return status
            time.sleep(self.backoff * 2 ** attempt)
        return status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with FakeProvider(host=args.host, port=args.port) as provider:
        print(f"fake payment provider on {provider.url}: DUEBOT_PAYMENT_PROVIDER_URL={provider.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
