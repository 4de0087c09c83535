"""Settings read once from the environment; every default works on a fresh checkout."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The languages duebot converses in (a Rasa model each; duebot/training.py trains them). An account's language
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


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    root: Path
    data_dir: Path
    rasa_venv: Path
    host: str
    rasa_port: int
    rasa_zh_port: int  # the second Rasa server, for Mandarin conversations
    actions_port: int
    web_port: int
    redis_url: str | None  # None: start the embedded redis-server
    embedded_redis_port: int

    @classmethod
    def from_env(cls) -> Settings:
        root = Path(os.environ.get("DUEBOT_HOME", PROJECT_ROOT))
        data_dir = Path(os.environ.get("DUEBOT_DATA_DIR", root / "var")).resolve()
        return cls(
            root=root,
            data_dir=data_dir,
            rasa_venv=Path(os.environ.get("DUEBOT_RASA_VENV", root / ".venv-rasa")),
            host=os.environ.get("DUEBOT_HOST", "127.0.0.1"),
            rasa_port=_int("DUEBOT_RASA_PORT", 5005),
            rasa_zh_port=_int("DUEBOT_RASA_ZH_PORT", 5006),
            actions_port=_int("DUEBOT_ACTIONS_PORT", 5055),
            web_port=_int("DUEBOT_WEB_PORT", 8080),
            redis_url=os.environ.get("REDIS_URL") or None,
            embedded_redis_port=_int("DUEBOT_REDIS_PORT", 6390),
        )

    @property
    def bot_dir(self) -> Path:
        return self.root / "bot"

    @property
    def nlu_dir(self) -> Path:
        return self.root / "nlu_data"

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
        """DUEBOT_LANGUAGES (e.g. `en`): the languages `duebot serve` starts a Rasa server for, when their model
        exists; every language by default. The default language is always served."""
        raw = os.environ.get("DUEBOT_LANGUAGES")
        if not raw:
            return LANGUAGES
        wanted = {part.strip() for part in raw.split(",") if part.strip()}
        if unknown := wanted - set(LANGUAGES):
            raise ValueError(f"DUEBOT_LANGUAGES: unknown language {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(LANGUAGES)})")
        return tuple(lang for lang in LANGUAGES if lang in wanted or lang == DEFAULT_LANGUAGE)

    @property
    def campaign_contactors(self) -> tuple[str, ...]:
        """DUEBOT_CAMPAIGN_CONTACTORS (e.g. `sms=twilio_sms`): the campaign worker's channel contactors, as
        `duebot campaign worker --contactor` takes them; unset, the worker contacts simulated subscribers."""
        raw = os.environ.get("DUEBOT_CAMPAIGN_CONTACTORS", "")
        items = tuple(part.strip() for part in raw.split(",") if part.strip())
        if bad := [item for item in items if item.partition("=")[0] not in ("sms", "voice") or "=" not in item]:
            raise ValueError(f"DUEBOT_CAMPAIGN_CONTACTORS: expected CHANNEL=NAME with CHANNEL sms or voice, "
                             f"got {', '.join(bad)}")
        return items

    @property
    def served_languages(self) -> tuple[str, ...]:
        """Languages with a running Rasa server: `duebot serve` tells its services in DUEBOT_SERVED_LANGUAGES
        (zh only when a zh model exists); without it, only the default language is assumed."""
        raw = os.environ.get("DUEBOT_SERVED_LANGUAGES") or DEFAULT_LANGUAGE
        served = tuple(x.strip() for x in raw.split(",") if x.strip())
        unknown = [x for x in served if x not in LANGUAGES]
        if unknown:
            raise ValueError(f"DUEBOT_SERVED_LANGUAGES: unknown language {unknown[0]!r} (expected {LANGUAGES})")
        return served if DEFAULT_LANGUAGE in served else (DEFAULT_LANGUAGE, *served)


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
