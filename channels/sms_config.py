"""Twilio and SMS settings, read from the environment (documented in the README's SMS section)."""

from __future__ import annotations

import os
from dataclasses import dataclass

TWILIO_API = "https://api.twilio.com"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class SmsSettings:
    account_sid: str
    auth_token: str
    from_number: str | None
    messaging_service_sid: str | None
    public_url: str  # the base URL Twilio calls (behind a proxy it differs from what we bind)
    api_base: str  # Twilio's REST API, or the local fake in tests and demos
    shared_key_id: str | None  # SHA-256 webhook signing: the SharedKey named in the settings header
    shared_key_secret: str | None
    brand: str  # who is texting, for HELP replies
    help_contact: str
    max_segments: int
    rate_per_minute: int  # outbound texts per destination number per minute
    rate_per_day: int
    dedupe_ttl: int  # seconds a MessageSid is remembered (Twilio retries within minutes)
    brand_zh: str = "账单助手"  # the same, in Mandarin texts (the 【signature】 of a Chinese SMS)
    help_contact_zh: str = "拨打账单上的客服电话"

    def brand_for(self, language: str) -> str:
        return self.brand_zh if language == "zh" else self.brand

    def help_contact_for(self, language: str) -> str:
        return self.help_contact_zh if language == "zh" else self.help_contact

    @classmethod
    def from_env(cls) -> SmsSettings:
        return cls(
            account_sid=os.environ.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32),
            auth_token=os.environ.get("TWILIO_AUTH_TOKEN", ""),
            from_number=os.environ.get("TWILIO_FROM_NUMBER") or None,
            messaging_service_sid=os.environ.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            public_url=os.environ.get("DUEBOT_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
            api_base=os.environ.get("TWILIO_API_BASE", TWILIO_API).rstrip("/"),
            shared_key_id=os.environ.get("TWILIO_WEBHOOK_SHARED_KEY_ID") or None,
            shared_key_secret=os.environ.get("TWILIO_WEBHOOK_SHARED_KEY") or None,
            brand=os.environ.get("DUEBOT_SMS_BRAND", "duebot billing assistant"),
            help_contact=os.environ.get("DUEBOT_SMS_HELP_CONTACT", "call the number on your bill"),
            max_segments=_int("DUEBOT_SMS_MAX_SEGMENTS", 4),
            rate_per_minute=_int("DUEBOT_SMS_RATE_PER_MINUTE", 1),
            rate_per_day=_int("DUEBOT_SMS_RATE_PER_DAY", 3),
            dedupe_ttl=_int("DUEBOT_SMS_DEDUPE_TTL", 7 * 86400),
            brand_zh=os.environ.get("DUEBOT_SMS_BRAND_ZH", "账单助手"),
            help_contact_zh=os.environ.get("DUEBOT_SMS_HELP_CONTACT_ZH", "拨打账单上的客服电话"),
        )

    def public(self, path: str) -> str:
        return self.public_url + path
