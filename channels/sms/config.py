"""What the SMS channel needs of the settings tree (Twilio's and the sms group), in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass

from duebot.settings import Settings, load_settings

TWILIO_API = "https://api.twilio.com"  # Twilio's own REST API (the settings tree's default)


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
    def from_settings(cls, settings: Settings | None = None) -> SmsSettings:
        s = settings or load_settings()
        shared_key = s.twilio.shared_key
        return cls(
            account_sid=s.twilio.account_sid,
            auth_token=s.twilio.auth_token.get_secret_value(),
            from_number=s.twilio.from_number,
            messaging_service_sid=s.twilio.messaging_service_sid,
            public_url=s.public_url,
            api_base=s.twilio.api_base,
            shared_key_id=s.twilio.shared_key_id,
            shared_key_secret=shared_key.get_secret_value() if shared_key else None,
            brand=s.sms.brand,
            help_contact=s.sms.help_contact,
            max_segments=s.sms.max_segments,
            rate_per_minute=s.sms.rate_per_minute,
            rate_per_day=s.sms.rate_per_day,
            dedupe_ttl=s.sms.dedupe_ttl,
            brand_zh=s.sms.brand_zh,
            help_contact_zh=s.sms.help_contact_zh,
        )

    def public(self, path: str) -> str:
        return self.public_url + path
