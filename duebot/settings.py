"""The one settings tree: every variable duebot reads, typed, grouped, validated at start, documented here.

Each field names its environment variable (`env(...)`); the names are the ones operators and scripts already use.
Groups are pydantic-settings models read from the process environment; `load_settings()` builds the tree and turns
a validation failure into a `SettingsError` that names the variable. `duebot config show` prints the effective
values (secrets masked) and where each came from; docs/configuration.md is generated from this module
(`duebot config docs`), and a test fails when they differ.

Code that runs inside Rasa's own environment (bot/components/, bot/evidence_broker.py, bot/endpoints.yml) cannot
import this module (other Python, other packages): it keeps its own small readers, listed in `RASA_SIDE`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The languages duebot converses in (a Rasa model each; training/train.py trains them). An account's language
# comes from its import row; anything else is talked to in the default language.
LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
_LANGUAGE_ALIASES = {"en": "en", "eng": "en", "english": "en",
                     "zh": "zh", "cmn": "zh", "zho": "zh", "chi": "zh", "mandarin": "zh", "chinese": "zh"}


def language_of_tag(tag: str | None) -> str | None:
    """en, zh, zh-CN, zh_Hans, cmn… → the duebot language it names, or None (ko, fr, nothing)."""
    base = re.split(r"[-_]", (tag or "").strip().lower(), maxsplit=1)[0]
    return _LANGUAGE_ALIASES.get(base)


def conversation_language(tag: str | None, served: Iterable[str] = LANGUAGES) -> str:
    """The one place that decides which language a conversation is held in: the account's language tag
    when a model for it is served, else the default language."""
    language = language_of_tag(tag) or DEFAULT_LANGUAGE
    return language if language in set(served) else DEFAULT_LANGUAGE


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def env(name: str, default: Any = None, doc: str = "", *, secret: bool = False) -> Any:
    """A field read from environment variable `name`."""
    return Field(default, validation_alias=name, description=doc, json_schema_extra={"env": name, "secret": secret})


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], NoDecode]


class Group(BaseSettings):
    # Only the variable names given by `env(...)` are read, exactly as written; unknown variables are ignored.
    # `VAR=` in a shell or compose file means "not set", as it always has in duebot.
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore", populate_by_name=True,
                                      env_ignore_empty=True)


class StackSettings(Group):
    """Where the stack runs: the checkout, the data dir, the host and ports of the services `duebot serve` starts."""

    home: Path = env("DUEBOT_HOME", PROJECT_ROOT, "The checkout: bot/, nlu_data/ and the packs are read from here.")
    data_dir_setting: Path | None = env("DUEBOT_DATA_DIR", None,
                                        "Everything duebot writes: models, evidence, database, logs. "
                                        "Default: `var/` in the checkout.")
    rasa_venv_setting: Path | None = env("DUEBOT_RASA_VENV", None,
                                         "Rasa's own Python environment. Default: `.venv-rasa` in the checkout.")
    host: str = env("DUEBOT_HOST", "127.0.0.1", "The interface every service binds to.")
    web_port: int = env("DUEBOT_WEB_PORT", 8080, "The web service: webhooks, chat, APIs, console.")
    rasa_port: int = env("DUEBOT_RASA_PORT", 5005, "The Rasa server of the default language (en).")
    rasa_zh_port: int = env("DUEBOT_RASA_ZH_PORT", 5006, "The Rasa server for Mandarin conversations.")
    actions_port: int = env("DUEBOT_ACTIONS_PORT", 5055, "The rasa-sdk action server.")
    emotion_port: int | None = env("DUEBOT_EMOTION_PORT", None,
                                   "The emotion service. Default: a free loopback port, told to Rasa.")
    public_url: str = env("DUEBOT_PUBLIC_URL", "http://127.0.0.1:8080",
                          "The base URL carriers and browsers reach the web service at (behind a proxy it differs "
                          "from what is bound); Twilio signs it; https here turns on secure cookies.")
    languages: CommaList = env("DUEBOT_LANGUAGES", LANGUAGES,
                               "Comma list: the languages `duebot serve` starts a Rasa server for, when their model "
                               "exists. The default language is always served.")
    served_languages_setting: CommaList = env("DUEBOT_SERVED_LANGUAGES", (DEFAULT_LANGUAGE,),
                                              "Comma list, set by `duebot serve` for its children: the languages "
                                              "with a running Rasa server.")

    @field_validator("languages", "served_languages_setting", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("languages", "served_languages_setting")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if unknown := [lang for lang in value if lang not in LANGUAGES]:
            raise ValueError(f"unknown language {', '.join(unknown)} (known: {', '.join(LANGUAGES)})")
        return value

    @field_validator("web_port", "rasa_port", "rasa_zh_port", "actions_port", "emotion_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value < 65536:
            raise ValueError("not a TCP port (1-65535)")
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if urlparse(value).scheme not in ("http", "https"):
            raise ValueError("expected an http(s):// URL")
        return value.rstrip("/")

    @property
    def root(self) -> Path:
        return self.home

    @property
    def data_dir(self) -> Path:
        return (self.data_dir_setting or self.home / "var").resolve()

    @property
    def rasa_venv(self) -> Path:
        return self.rasa_venv_setting or self.home / ".venv-rasa"

    @property
    def bot_dir(self) -> Path:
        return self.home / "bot"

    @property
    def nlu_dir(self) -> Path:
        return self.home / "nlu_data"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def rasa_bin(self) -> Path:
        return self.rasa_venv / "bin" / "rasa"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    def rasa_url_for(self, language: str) -> str:
        return self.rasa_url if language == DEFAULT_LANGUAGE else f"http://{self.host}:{self.rasa_zh_port}"

    @property
    def languages_to_serve(self) -> tuple[str, ...]:
        return tuple(lang for lang in LANGUAGES if lang in self.languages or lang == DEFAULT_LANGUAGE)

    @property
    def served_languages(self) -> tuple[str, ...]:
        served = self.served_languages_setting
        return served if DEFAULT_LANGUAGE in served else (DEFAULT_LANGUAGE, *served)


class RedisSettings(Group):
    """Redis holds queues, locks, rate limits, Rasa's trackers and the evidence inbox."""

    url: str | None = env("REDIS_URL", None,
                          "redis://[:password@]host:port/db. Unset: `duebot serve` starts an embedded redis-server "
                          "and gives its URL to every service it starts; any other process uses that one when it "
                          "answers on DUEBOT_REDIS_PORT, and otherwise stops with an error naming this variable.",
                          secret=True)
    embedded_port: int = env("DUEBOT_REDIS_PORT", 6390, "The embedded redis-server's loopback port.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class DatabaseSettings(Group):
    url: str | None = env("DUEBOT_DB_URL", None,
                          "The account store (SQLAlchemy URL). Default: SQLite `duebot.sqlite3` in the data dir.",
                          secret=True)


class TwilioSettings(Group):
    """Twilio's REST API and webhooks (SMS and voice)."""

    account_sid: str = env("TWILIO_ACCOUNT_SID", "AC" + "0" * 32, "The account SID (HTTP Basic user).")
    auth_token: SecretStr = env("TWILIO_AUTH_TOKEN", SecretStr(""),
                                "Signs webhooks (X-Twilio-Signature) and authenticates REST calls.", secret=True)
    from_number: str | None = env("TWILIO_FROM_NUMBER", None, "The E.164 number texts and calls come from.")
    messaging_service_sid: str | None = env("TWILIO_MESSAGING_SERVICE_SID", None,
                                            "Send through a Messaging Service instead of a From number.")
    api_base: str = env("TWILIO_API_BASE", "https://api.twilio.com",
                        "Twilio's REST API; the local fake's URL in tests and the demo.")
    shared_key_id: str | None = env("TWILIO_WEBHOOK_SHARED_KEY_ID", None,
                                    "SHA-256 webhook signing: the SharedKey's id.")
    shared_key: SecretStr | None = env("TWILIO_WEBHOOK_SHARED_KEY", None, "SHA-256 webhook signing: its secret.",
                                       secret=True)
    voice_enabled: bool = env("DUEBOT_TWILIO_VOICE", False,
                              "1: the web service mounts Twilio Voice (TwiML + Media Streams; loads speech models). "
                              "Without TWILIO_AUTH_TOKEN every voice request is refused (503).")
    stream_token_ttl: float = env("DUEBOT_TWILIO_STREAM_TOKEN_TTL", 120.0,
                                  "Seconds a call's Media Stream token (minted by the signed TwiML webhook, single "
                                  "use) is valid for the WebSocket to connect.")

    @field_validator("api_base")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("stream_token_ttl")
    @classmethod
    def _short_lived(cls, value: float) -> float:
        if not 0 < value <= 600:
            raise ValueError("expected seconds above 0 and at most 600 (a stream token is short-lived)")
        return value


class SmsSettingsGroup(Group):
    """Texts: who is texting, how long and how often."""

    brand: str = env("DUEBOT_SMS_BRAND", "duebot billing assistant", "Who is texting, in HELP replies.")
    brand_zh: str = env("DUEBOT_SMS_BRAND_ZH", "账单助手", "The same, in Mandarin texts (the 【signature】).")
    help_contact: str = env("DUEBOT_SMS_HELP_CONTACT", "call the number on your bill", "Where HELP sends people.")
    help_contact_zh: str = env("DUEBOT_SMS_HELP_CONTACT_ZH", "拨打账单上的客服电话", "The same, in Mandarin.")
    max_segments: int = env("DUEBOT_SMS_MAX_SEGMENTS", 4, "Longest text sent, in billed segments.")
    rate_per_minute: int = env("DUEBOT_SMS_RATE_PER_MINUTE", 1, "Outbound texts per number per minute.")
    rate_per_day: int = env("DUEBOT_SMS_RATE_PER_DAY", 3, "Outbound texts per number per day.")
    dedupe_ttl: int = env("DUEBOT_SMS_DEDUPE_TTL", 7 * 86400,
                          "Seconds a MessageSid is remembered (Twilio retries within minutes).")
    reply_rate_per_minute: int = env("DUEBOT_SMS_REPLY_RATE_PER_MINUTE", 30,
                                     "Inbound texts per number per minute that get an answer.")

    @field_validator("max_segments", "rate_per_minute", "rate_per_day", "dedupe_ttl", "reply_rate_per_minute")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value


class ChatSettings(Group):
    rate_per_minute: int = env("DUEBOT_CHAT_RATE_PER_MINUTE", 30, "Chat messages per conversation per minute.")


class PaymentSettings(Group):
    """Payment links (payments/links.py): where a link points. The link's lifetime is the strategy's
    `payment_link.ttl_hours`; the link is texted to the account's own number (Twilio, group `twilio`)."""

    link_base_url: str | None = env("DUEBOT_PAYMENT_LINK_BASE_URL", None,
                                    "The payment page a link opens; the signed token is added as `?t=…`. Default: "
                                    "DUEBOT_PUBLIC_URL + `/pay`, duebot's own payment page (payments/page.py), which "
                                    "shows the amount and hands over to DUEBOT_PAYMENT_PROVIDER_URL. A provider's own "
                                    "hosted page instead reads the token and confirms through "
                                    "`POST /payments/webhook`.")
    provider_url: str | None = env("DUEBOT_PAYMENT_PROVIDER_URL", None,
                                   "The payment provider's checkout API (payments/provider.py): `/pay` POSTs "
                                   "`<url>/checkouts` (signed like the webhook) and sends the subscriber to the "
                                   "checkout it returns; the provider confirms through `POST /payments/webhook`. "
                                   "Unset: the page says online payment is not available and gives the callback "
                                   "number. Local: `python -m duebot.payments.fake_provider`.")
    follow_up_interval: float = env("DUEBOT_FOLLOW_UP_INTERVAL", 30.0,
                                    "Seconds between two rounds of promise and plan follow-through (reminders, "
                                    "deadline checks, campaign re-entry; campaigns/followup.py) in the campaign "
                                    "worker. 0: the worker does not run it.")

    @field_validator("follow_up_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0 <= value <= 86400:
            raise ValueError("expected seconds from 0 to 86400")
        return value

    @field_validator("link_base_url", "provider_url")
    @classmethod
    def _page(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("expected an http(s):// URL")
        if parsed.query or parsed.fragment:
            raise ValueError("no ?query or #fragment: the link adds ?t=<token> itself")
        return value.rstrip("/")


class VerificationSettings(Group):
    """The identity check before anything about a debt is said (bot/actions/verification.py). Failed checks are
    counted per account in Redis, across every conversation and channel; how many are allowed is the strategy's
    `verification.max_attempts`."""

    cooldown: int = env("DUEBOT_VERIFICATION_COOLDOWN", 1800,
                        "Seconds an account's identity check stays closed after the strategy's "
                        "`verification.max_attempts` failures (counted from the last one); meanwhile the bot "
                        "offers a person, then the subscriber may try again.")
    idle: int = env("DUEBOT_VERIFICATION_IDLE", 900,
                    "Seconds without a message after which a verified conversation must verify again. A new Rasa "
                    "session (bot/domain.yml `session_expiration_time`) always ends verification too.")

    @field_validator("cooldown", "idle")
    @classmethod
    def _seconds(cls, value: int) -> int:
        if not 1 <= value <= 86400 * 7:
            raise ValueError("expected seconds between 1 and a week")
        return value


# Values that were ever published in this repository (old development defaults): never a key.
PUBLISHED_SECRETS = frozenset({"duebot-development-chat-secret", "duebot-development-payment-secret"})


class SecretsSettings(Group):
    """Keys duebot signs and authenticates with. Each one unset is generated into `<data dir>/secrets/` (0600)
    and shared by the processes of the stack; set them when processes run on several machines."""

    payment: SecretStr | None = env("DUEBOT_PAYMENT_SECRET", None,
                                    "Signs payment links and verifies the payment provider's webhook.", secret=True)
    chat: SecretStr | None = env("DUEBOT_CHAT_SECRET", None, "Signs chat links (HMAC-SHA256).", secret=True)
    channel: SecretStr | None = env("DUEBOT_CHANNEL_SECRET", None,
                                    "Signs the account a channel puts in a message to Rasa; the actions trust "
                                    "no other.", secret=True)
    rasa_token: SecretStr | None = env("DUEBOT_RASA_TOKEN", None,
                                       "Rasa's HTTP API token (`rasa run --auth-token`).", secret=True)
    actions_token: SecretStr | None = env("DUEBOT_ACTIONS_TOKEN", None,
                                          "What Rasa presents to the action server, which refuses every call "
                                          "without it.", secret=True)
    redis_password: SecretStr | None = env("DUEBOT_EMBEDDED_REDIS_PASSWORD", None,
                                           "The embedded redis-server's `requirepass`.", secret=True)
    voice: SecretStr | None = env("DUEBOT_VOICE_SECRET", None,
                                  "Keys the opaque voice conversation ids (HMAC of the caller's number): the same "
                                  "number gets the same id, which holds no digit of it.", secret=True)
    data_key: SecretStr | None = env("DUEBOT_DATA_KEY", None,
                                     "The current data key (at least 32 characters): seals personal data at rest, "
                                     "the account store's personal columns and the evidence payloads (group "
                                     "`encryption`). Rotate it as docs/security.md says: never just replace it.",
                                     secret=True)
    blind_index: SecretStr | None = env("DUEBOT_BLIND_INDEX_KEY", None,
                                        "Keys the blind index (HMAC) a sealed phone number is looked up by (at least "
                                        "32 characters). Changing it: DUEBOT_BLIND_INDEX_OLD_KEYS, then `duebot "
                                        "accounts rekey`.", secret=True)
    billing_webhook: SecretStr | None = env("DUEBOT_BILLING_WEBHOOK_SECRET", None,
                                            "Signs the events sent to the operator's billing/CRM and verifies its "
                                            "updates (`X-Duebot-Signature: sha256=<hex HMAC>`, docs/billing.md).",
                                            secret=True)

    @field_validator("*")
    @classmethod
    def _not_published(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() in PUBLISHED_SECRETS:
            raise ValueError("this value is published in duebot's repository; choose a secret of your own")
        return value

    @field_validator("data_key", "blind_index")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("at least 32 characters (`duebot accounts keygen` prints a fresh one)")
        return value


class VoiceSettings(Group):
    """Speech models and the voice process."""

    language: str = env("DUEBOT_VOICE_LANGUAGE", "en", "The language `duebot voice sip` answers calls in.")
    vosk_model: Path | None = env("DUEBOT_VOSK_MODEL", None, "An unpacked Vosk model folder (else Whisper tiny.en).")
    whisper_model: Path | None = env("DUEBOT_WHISPER_MODEL", None, "A faster-whisper model folder.")
    piper_voice: Path | None = env("DUEBOT_PIPER_VOICE", None, "A Piper voice .onnx (else en_US-joe-medium).")
    espeak_fallback_zh: bool = env("DUEBOT_ESPEAK_FALLBACK_ZH", False,
                                   "Mandarin calls without a Piper voice speak with espeak-ng (cmn-latn-pinyin), a "
                                   "last resort: no registry package ships a Piper Mandarin voice (docs/voice.md).")
    vosk_model_zh: Path | None = env("DUEBOT_VOSK_MODEL_ZH", None, "The Mandarin Vosk model folder.")
    whisper_model_zh: Path | None = env("DUEBOT_WHISPER_MODEL_ZH", None, "A Mandarin faster-whisper model folder.")
    piper_voice_zh: Path | None = env("DUEBOT_PIPER_VOICE_ZH", None, "The Mandarin Piper voice .onnx.")
    asr_workers: int = env("DUEBOT_ASR_WORKERS", 2, "Threads that decode speech for all calls of a process.")
    rasa_url: str | None = env("DUEBOT_RASA_URL", None,
                               "The Rasa server voice calls talk to. Default: the one of the call's language.")

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"expected one of {', '.join(LANGUAGES)}")
        return value

    def model_variables(self, language: str) -> dict[str, tuple[str, Path | None]]:
        """vosk / whisper / piper → (the variable that names it for `language`, its value)."""
        suffix = "" if language == DEFAULT_LANGUAGE else f"_{language}"
        out = {}
        for kind, field in (("vosk", "vosk_model"), ("whisper", "whisper_model"), ("piper", "piper_voice")):
            name = field + suffix
            if name not in type(self).model_fields:
                out[kind] = (f"{variable(type(self), field)}_{language.upper()}", None)
            else:
                out[kind] = (variable(type(self), name), getattr(self, name))
        return out


class SipSettings(Group):
    """The SIP registrar or trunk the voice process registers with (rfcvoip)."""

    server: str = env("DUEBOT_SIP_SERVER", "127.0.0.1", "Registrar / proxy host.")
    port: int = env("DUEBOT_SIP_PORT", 5060, "Registrar / proxy port.")
    user: str = env("DUEBOT_SIP_USER", "duebot", "SIP user name.")
    password: SecretStr = env("DUEBOT_SIP_PASSWORD", SecretStr(""), "SIP password.", secret=True)
    local_ip: str = env("DUEBOT_SIP_LOCAL_IP", "127.0.0.1", "The address SIP and RTP bind to.")
    local_port: int = env("DUEBOT_SIP_LOCAL_PORT", 5062, "duebot's SIP port.")
    rtp_ports: str = env("DUEBOT_RTP_PORTS", "20000-20999", "LOW-HIGH: the RTP port range.")

    @field_validator("rtp_ports")
    @classmethod
    def _range(cls, value: str) -> str:
        low, sep, high = value.partition("-")
        if not (sep and low.isdigit() and high.isdigit() and 0 < int(low) < int(high) < 65536):
            raise ValueError("expected LOW-HIGH ports")
        return value

    @property
    def rtp_range(self) -> tuple[int, int]:
        low, _, high = self.rtp_ports.partition("-")
        return int(low), int(high)


class EmotionSettings(Group):
    encoder: str | None = env("DUEBOT_EMOTION_ENCODER", None,
                              "A local sentence-encoder folder. Default: the packaged all-MiniLM-L6-v2.")
    threads: int = env("DUEBOT_EMOTION_THREADS", 1, "torch threads of the emotion service.")
    policy: Path | None = env("DUEBOT_EMOTION_POLICY", None,
                              "De-escalation thresholds and texts. Default: policies/emotion.yml.")


class CampaignSettings(Group):
    contactors: CommaList = env("DUEBOT_CAMPAIGN_CONTACTORS", (),
                                "Comma list CHANNEL=NAME (e.g. `sms=twilio_sms`): the campaign worker's contactors "
                                "under `duebot serve`. Unset: simulated subscribers.")
    strategy: Path | None = env("DUEBOT_STRATEGY", None,
                                "The strategy file the bot's settlement offers follow. Default: the packaged one.")

    @field_validator("contactors", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("contactors")
    @classmethod
    def _pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if bad := [item for item in value if item.partition("=")[0] not in ("sms", "voice") or "=" not in item]:
            raise ValueError(f"expected CHANNEL=NAME with CHANNEL sms or voice, got {', '.join(bad)}")
        return value


class EvidenceSettings(Group):
    assess_after: float = env("DUEBOT_EVIDENCE_ASSESS_AFTER", 60.0,
                              "Seconds of quiet after which the writer assesses a conversation (three elements).")
    key_file: Path | None = env("DUEBOT_EVIDENCE_KEY_FILE", None,
                                "The log's Ed25519 signing key (PEM, kept mode 0600), outside the data directory so "
                                "that what can write the log cannot re-sign it. Created at first start; a log.key "
                                "beside the log is moved here. Default: `log.key` beside the log.")
    trusted_key: Path | None = env("DUEBOT_EVIDENCE_TRUSTED_KEY", None,
                                   "A pinned copy of the log's public key (`public.vkey` as first exported): "
                                   "`duebot evidence verify`, `verify-bundle` and the console's integrity badge check "
                                   "checkpoints against it, not against the key beside the log. Default: none.")
    witness_dir: Path | None = env("DUEBOT_EVIDENCE_WITNESS_DIR", None,
                                   "An append-only directory (ideally another machine's or another user's) where "
                                   "every signed checkpoint is also kept after a consistency check; `duebot "
                                   "evidence verify` then requires the log to extend the last one. Default: none.")

    @field_validator("assess_after")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not 0 <= value < 86400 * 7:
            raise ValueError("expected seconds between 0 and a week")
        return value


class KpiSettings(Group):
    """The money KPIs by branch and period (`duebot report`, the console's KPI page, the /metrics gauges)."""

    targets: Path | None = env("DUEBOT_KPI_TARGETS", None,
                               "The KPI targets and the parameters of their definitions (YAML, like the packaged "
                               "one). Default: campaigns/kpi_targets.yml (seed 000 §2.4 and seed 003).")
    timezone: str = env("DUEBOT_KPI_TIMEZONE", "UTC",
                        "The time zone weeks, months and quarters of the KPI reports are cut in (e.g. "
                        "Asia/Shanghai).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class RiskSettings(Group):
    """The risk score (risk/, docs/risk.md): training, scoring, and the threshold `duebot risk score` flags."""

    warning_below: float = env("DUEBOT_RISK_WARNING_BELOW", 60.0,
                               "Scores below this get the warning (seed 000 §3.3: 60): flagged by `duebot risk "
                               "score`, and recorded with each trained model.")
    horizon_days: int = env("DUEBOT_RISK_HORIZON_DAYS", 30,
                            "N of the training label (debt recovered within N days of the snapshot), recorded with "
                            "the model.")
    holdout: float = env("DUEBOT_RISK_HOLDOUT", 0.25,
                         "Share of the labelled history held out (stratified) for AUC, Brier and calibration.")
    age_band: bool = env("DUEBOT_RISK_AGE_BAND", False,
                         "Train with the age band (18-30, 31-50, 51+) as a feature. Off: seed 000 §4.1 warns of bias "
                         "against the elderly, and many jurisdictions forbid age in credit decisions; turn on only "
                         "where lawful.")
    exclude: CommaList = env("DUEBOT_RISK_EXCLUDE", (),
                             "Comma list of features to train without (e.g. `disputes` where using a dispute against "
                             "a subscriber is unlawful); docs/risk.md lists them.")
    model: str | None = env("DUEBOT_RISK_MODEL", None,
                            "The model version `duebot risk score` uses. Default: the last trained (`CURRENT`).")

    @field_validator("exclude", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("warning_below")
    @classmethod
    def _score(cls, value: float) -> float:
        if not 0 < value <= 100:
            raise ValueError("a score between 0 (exclusive) and 100")
        return value

    @field_validator("horizon_days")
    @classmethod
    def _days(cls, value: int) -> int:
        if not 1 <= value <= 3650:
            raise ValueError("days between 1 and 3650")
        return value

    @field_validator("holdout")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0.05 <= value <= 0.5:
            raise ValueError("a share between 0.05 and 0.5")
        return value


ENCRYPTION_ALGORITHMS = ("aes-256-gcm", "sm4-gcm")  # duebot/crypto.py ALGORITHMS


class EncryptionSettings(Group):
    """Encryption at rest (duebot/crypto.py): the account store's personal columns (name, phone, ID digits, birth
    date) and every evidence payload (transcript text, call audio, sealed personal values) are sealed with the data
    key (DUEBOT_DATA_KEY, group `secrets`). An account's pack picks its cipher (`encryption:` in the pack; cn asks
    for sm4-gcm); key rotation: docs/security.md."""

    algorithm: str = env("DUEBOT_ENCRYPTION", "aes-256-gcm",
                         "aes-256-gcm or sm4-gcm: the cipher of evidence payloads and of accounts whose pack names "
                         "none. A deployment that must use SM4 for everything sets sm4-gcm.")
    old_keys: CommaList = env("DUEBOT_DATA_OLD_KEYS", (),
                              "Comma list: retired data keys, kept only to open what they sealed until `duebot "
                              "accounts rekey` has re-sealed it with DUEBOT_DATA_KEY; remove them after.",
                              secret=True)
    old_index_keys: CommaList = env("DUEBOT_BLIND_INDEX_OLD_KEYS", (),
                                    "Comma list: retired blind-index keys, still looked up until `duebot accounts "
                                    "rekey` has recomputed every index with DUEBOT_BLIND_INDEX_KEY.", secret=True)

    @field_validator("old_keys", "old_index_keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("old_keys", "old_index_keys")
    @classmethod
    def _long_enough(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(key) < 32 for key in value):
            raise ValueError("every key has at least 32 characters")
        return value

    @field_validator("algorithm")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ENCRYPTION_ALGORITHMS:
            raise ValueError(f"expected one of {', '.join(ENCRYPTION_ALGORITHMS)}")
        return value


_REGISTERED_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ApiSettings(Group):
    """The operator API (`/campaigns/…`, `/gate/check`, `/metrics`: API tokens from `duebot console token`) and
    the web service's request limits. Over HTTP, packs and strategies are chosen by name only, never by path."""

    gate_packs: CommaList = env("DUEBOT_GATE_PACKS", (),
                                "Comma list NAME=PATH (a .yml pack file): operator packs `/gate/check?pack=NAME` "
                                "accepts besides the packaged cn and us. Nothing else is accepted over HTTP.")
    strategies: CommaList = env("DUEBOT_STRATEGIES", (),
                                "Comma list NAME=PATH (a .yml strategy file): operator strategies the campaign API "
                                "and the console's import accept by name besides the packaged ones.")
    max_body_bytes: int = env("DUEBOT_MAX_BODY_BYTES", 1024 * 1024,
                              "The largest request body the web service reads (webhooks, chat, JSON APIs); a larger "
                              "one is refused with 413 before it is read.")
    max_upload_bytes: int = env("DUEBOT_MAX_UPLOAD_BYTES", 50 * 1024 * 1024,
                                "The largest account upload (`POST /campaigns/import`, the console's import); 413 "
                                "beyond it.")
    gate_max_batch: int = env("DUEBOT_GATE_MAX_BATCH", 1000,
                              "The most requests one `POST /gate/check` array may hold; 413 beyond it.")

    @field_validator("gate_packs", "strategies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("gate_packs", "strategies")
    @classmethod
    def _named_files(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            name, sep, path = item.partition("=")
            if not sep or not _REGISTERED_NAME.match(name) or not path.endswith((".yml", ".yaml")):
                raise ValueError(f"expected NAME=PATH.yml with NAME lowercase letters, digits, '-' or '_', "
                                 f"got {item!r}")
        return value

    @field_validator("max_body_bytes", "max_upload_bytes", "gate_max_batch")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @staticmethod
    def _pairs(items: tuple[str, ...]) -> dict[str, Path]:
        return {name: Path(path) for name, _, path in (item.partition("=") for item in items)}

    @property
    def registered_packs(self) -> dict[str, Path]:
        return self._pairs(self.gate_packs)

    @property
    def registered_strategies(self) -> dict[str, Path]:
        return self._pairs(self.strategies)


class BillingSettings(Group):
    """The operator's billing/CRM (channels/billing/, docs/billing.md): signed events out, signed updates in. The
    key is DUEBOT_BILLING_WEBHOOK_SECRET (group `secrets`), generated when unset."""

    webhook_url: str | None = env("DUEBOT_BILLING_WEBHOOK_URL", None,
                                  "Where the billing relay POSTs events. Unset: the relay does not run.")
    max_attempts: int = env("DUEBOT_BILLING_MAX_ATTEMPTS", 6,
                            "Tries per event before it goes to the dead-letter list (`duebot billing retry`).")
    backoff: float = env("DUEBOT_BILLING_BACKOFF", 1.0,
                         "Seconds before the first retry; doubled after each failure.")
    backoff_max: float = env("DUEBOT_BILLING_BACKOFF_MAX", 60.0, "The longest wait between two tries, in seconds.")
    timeout: float = env("DUEBOT_BILLING_TIMEOUT", 10.0, "Seconds one POST may take.")
    policy: Path | None = env("DUEBOT_BILLING_POLICY", None,
                              "When to ask billing to suspend or restore service (YAML). Default: "
                              "channels/billing/billing.yml.")

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and (urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc):
            raise ValueError("expected an http(s):// URL")
        return value

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, value: int) -> int:
        if not 1 <= value <= 50:
            raise ValueError("expected 1 to 50 tries")
        return value

    @field_validator("backoff", "backoff_max", "timeout")
    @classmethod
    def _seconds(cls, value: float) -> float:
        if not 0 < value <= 3600:
            raise ValueError("expected seconds above 0 and at most 3600")
        return value


class Settings(StackSettings):
    """The whole tree. The stack's own fields sit at the top; each subsystem has its group."""

    # Lower-case group names are never environment variables (the model is case sensitive): groups read their own.
    redis: RedisSettings = Field(default_factory=RedisSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    sms: SmsSettingsGroup = Field(default_factory=SmsSettingsGroup)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    payments: PaymentSettings = Field(default_factory=PaymentSettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    emotion: EmotionSettings = Field(default_factory=EmotionSettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)

    @property
    def payment_link_base_url(self) -> str:
        """The page payment links open: DUEBOT_PAYMENT_LINK_BASE_URL, else duebot's own public URL + /pay."""
        return self.payments.link_base_url or f"{self.public_url}/pay"

    def changed(self, **values: Any) -> Settings:
        """A copy with some values replaced, named by their variables (e.g. `DUEBOT_DATA_DIR=...`, `REDIS_URL=None`):
        how tests, benchmarks and the demo wire a stack of their own without touching this process's environment."""
        unknown = set(values) - set(VARIABLES)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")

        def current(name: str, model: BaseSettings) -> dict[str, Any]:
            fields = GROUPS[name].model_fields
            return {variable(GROUPS[name], f): getattr(model, f) for f in fields if f in type(model).model_fields}

        try:
            groups = {name: group(**{**current(name, getattr(self, name)),
                                     **{k: v for k, v in values.items() if k in current(name, getattr(self, name))}})
                      for name, group in GROUPS.items() if name != "stack"}
            stack = {k: v for k, v in {**current("stack", self), **values}.items() if k in current("stack", self)}
            return Settings(**stack, **groups)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if len({self.web_port, self.rasa_port, self.rasa_zh_port, self.actions_port}) < 4:
            raise ValueError("DUEBOT_WEB_PORT, DUEBOT_RASA_PORT, DUEBOT_RASA_ZH_PORT and DUEBOT_ACTIONS_PORT "
                             "must differ")
        return self


GROUPS: dict[str, type[Group]] = {"stack": StackSettings, **{
    name: field.default_factory  # type: ignore[misc]
    for name, field in Settings.model_fields.items() if field.default_factory is not None}}


def variable(group: type[Group], field: str) -> str:
    return (group.model_fields[field].json_schema_extra or {})["env"]  # type: ignore[index]


@dataclass(frozen=True)
class Entry:
    """One setting, for `duebot config show` and the generated docs."""

    group: str
    field: str
    variable: str
    info: FieldInfo
    secret: bool

    @property
    def default_text(self) -> str:
        default = self.info.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, tuple):
            default = ",".join(default)
        if isinstance(default, Path):
            default = "the checkout" if default == PROJECT_ROOT else str(default)
        return "" if default in (None, "") else str(default)


def entries() -> Iterator[Entry]:
    for group_name, group in GROUPS.items():
        for field_name, info in group.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "env" in extra:
                yield Entry(group_name, field_name, str(extra["env"]), info, bool(extra["secret"]))


VARIABLES = tuple(entry.variable for entry in entries())

# Read inside Rasa's environment (Python 3.10, no duebot package): set by `duebot serve` for its Rasa servers.
RASA_SIDE = {
    "DUEBOT_EMOTION_URL": "bot/components/emotion_component.py: the emotion service Rasa's NLU component calls.",
    "DUEBOT_ACTIONS_URL": "bot/endpoints.yml: the action server's webhook.",
    "DUEBOT_REDIS_HOST": "bot/endpoints.yml: Redis host for the tracker store, lock store and event broker.",
    "DUEBOT_REDIS_PORT_NUMBER": "bot/endpoints.yml: its port.",
    "DUEBOT_REDIS_DB": "bot/endpoints.yml: its database number.",
    "DUEBOT_REDIS_PASSWORD": "bot/endpoints.yml: its password.",
}


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        got = item.get("input")
        shown = "" if isinstance(got, dict | SecretStr) or got is None else f" (got {str(got)[:60]!r})"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}{shown}")
    return "; ".join(lines)


def _relevant_environment() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in VARIABLES)


@lru_cache(maxsize=8)
def _load(snapshot: tuple[str | None, ...]) -> Settings:
    del snapshot  # the cache key: the tree is rebuilt whenever one of its variables changes
    groups, errors = {}, []
    for name, group in GROUPS.items():  # each group on its own, so that one message names every bad variable
        try:
            built = group()
        except ValidationError as exc:
            errors.append(_describe(exc))
            continue
        if name != "stack":
            groups[name] = built
    if errors:
        raise SettingsError("; ".join(errors))
    try:
        return Settings(**groups)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def load_settings() -> Settings:
    """The effective settings (read from the environment; rebuilt only when one of its variables changed)."""
    return _load(_relevant_environment())


def source_of(entry: Entry) -> str:
    return "environment" if os.environ.get(entry.variable, "") != "" else "default"


def mask(value: Any, secret: bool) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value in (None, ""):
        return ""
    text = ",".join(value) if isinstance(value, tuple) else str(value)
    if not secret:
        return text
    parsed = urlparse(text)
    if parsed.scheme and parsed.netloc:  # a URL: keep where it points, hide who it logs in as
        host = parsed.hostname or ""
        port = f":{parsed.port}" if parsed.port else ""
        auth = "****@" if parsed.password or parsed.username else ""
        return f"{parsed.scheme}://{auth}{host}{port}{parsed.path}"
    return "****"


def effective(settings: Settings) -> list[tuple[Entry, str, str]]:
    """(entry, shown value, source) for every setting."""
    rows = []
    for entry in entries():
        group = settings if entry.group == "stack" else getattr(settings, entry.group)
        # an optional path's effective value is its property without the suffix (data_dir: default under home)
        value = getattr(group, entry.field.removesuffix("_setting"))
        rows.append((entry, mask(value, entry.secret), source_of(entry)))
    return rows


def markdown_table() -> str:
    """docs/configuration.md, generated from this module."""
    out = ["# Configuration", "",
           "Generated from `duebot/settings.py` by `duebot config docs > docs/configuration.md`; "
           "`tests/test_settings.py` fails when this file and the tree differ. Every value is an environment "
           "variable; `duebot config show` prints the effective values (secrets masked) and where each came from, "
           "`duebot config check` validates them without starting anything.", ""]
    for group_name, group in GROUPS.items():
        doc = (group.__doc__ or "").strip()
        out += [f"## {group_name}", ""] + ([doc, ""] if doc else [])
        out += ["| variable | default | meaning |", "|---|---|---|"]
        for entry in entries():
            if entry.group == group_name:
                default = f"`{entry.default_text}`" if entry.default_text else ""
                secret = " **Secret**: masked by `duebot config show`." if entry.secret else ""
                out.append(f"| `{entry.variable}` | {default} | {entry.info.description}{secret} |")
        out.append("")
    out += ["## Read inside Rasa's environment", "",
            "Rasa runs in its own Python; these small readers are set by `duebot serve` for its Rasa servers.", "",
            "| variable | read by |", "|---|---|"]
    out += [f"| `{name}` | {where} |" for name, where in RASA_SIDE.items()]
    return "\n".join(out) + "\n"


def child_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process starts with: this one's, plus `overrides` (the supervisor's wiring)."""
    return {**os.environ, **(overrides or {})}


def export(values: Mapping[str, str | None]) -> None:
    """Set (or, for None, remove) variables for this process and the children it starts: the demo's and the
    benchmarks' wiring of the services they launch."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def library_defaults(values: Mapping[str, str]) -> None:
    """Variables read by third-party libraries (Hugging Face's offline switches), set unless the operator did."""
    for name, value in values.items():
        os.environ.setdefault(name, value)


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    db: int
    password: str

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss"):
            raise ValueError(f"REDIS_URL must start with redis://, got {url!r}")
        db = parsed.path.lstrip("/") or "0"
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 6379, int(db), parsed.password or "")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"
