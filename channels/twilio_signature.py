"""X-Twilio-Signature: sign (for the fake) and validate (for duebot's webhooks) exactly as Twilio does.

Twilio signs the full public URL it called plus the POST parameters sorted by name (each name followed by
its value), with HMAC-SHA1 under the account's Auth Token; accounts switched to SHA-256 webhook signing send
`X-Twilio-Webhooks-Signature-Settings: key=<SharedKey sid>,algorithm=HMAC_SHA256` and sign with that SharedKey's
secret. The signature carries no timestamp or nonce, so it cannot by itself stop a replay: duebot dedupes on
MessageSid (see twilio_sms.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from duebot.channels.sms.config import SmsSettings

SIGNATURE_HEADER = "X-Twilio-Signature"


def sign(url: str, params: Mapping[str, str], secret: str, algorithm: str = HMAC_SHA1) -> str:
    return RequestValidator(secret).compute_signature(url, dict(params), algorithm)


def _settings_key_id(header: str) -> str | None:
    for part in header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "key":
            return value.strip() or None
    return None


def check(settings: SmsSettings, url: str, params: Mapping[str, str] | object,
          headers: Mapping[str, str]) -> str | None:
    """None when the request is signed by Twilio for this URL; otherwise why it is not (for the log)."""
    signature = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER)
    if not signature:
        return "unsigned"
    settings_header = headers.get(SIGNATURE_SETTINGS_HEADER.lower()) or headers.get(SIGNATURE_SETTINGS_HEADER) or ""
    algorithm = get_signature_algorithm(settings_header)
    if algorithm not in (HMAC_SHA1, HMAC_SHA256):
        return f"unsupported algorithm {algorithm!r}"
    if settings_header and _settings_key_id(settings_header):
        # Signed with a SharedKey: only the one we were configured with is accepted.
        if not settings.shared_key_secret or _settings_key_id(settings_header) != settings.shared_key_id:
            return "unknown signing key"
        secret = settings.shared_key_secret
    else:
        secret = settings.auth_token
    if not secret:
        return "no auth token configured"
    if not RequestValidator(secret).validate(url, params, signature, algorithm):
        return "bad signature"
    return None
