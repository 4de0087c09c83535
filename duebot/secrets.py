"""The secrets duebot signs and authenticates with: the operator's, from the settings tree, or generated.

An operator's value comes from its variable (docs/configuration.md, group `secrets`); a value published in this
repository (an old development default, a documentation example) is refused when the settings load. Unset, the
secret is generated once — 32 random bytes — into `<data dir>/secrets/<name>` (directory 0700, file 0600) and read
from there by every process of the stack, which share the data dir. No constant in the code is ever a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as random_source
from pathlib import Path

from duebot.settings import Settings, load_settings

NAMES = ("payment", "chat", "channel", "rasa_token", "actions_token", "redis_password", "voice", "data_key",
         "blind_index", "billing_webhook")


def secrets_dir(settings: Settings) -> Path:
    return settings.data_dir / "secrets"


def _generated(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made by this process earlier or by another one of the stack: theirs is the secret
    else:
        with os.fdopen(fd, "w") as out:
            out.write(random_source.token_urlsafe(32))
            out.flush()
            os.fsync(out.fileno())
    value = path.read_text().strip()
    if len(value) < 32:  # a file cut short by a crash between create and write: make it again
        path.unlink(missing_ok=True)
        return _generated(path)
    return value


def secret(name: str, settings: Settings | None = None) -> str:
    """The operator's value of secret `name`, else the one generated for this data dir."""
    if name not in NAMES:
        raise KeyError(f"unknown secret {name!r} (known: {', '.join(NAMES)})")
    settings = settings or load_settings()
    configured = getattr(settings.secrets, name)
    if configured is not None:
        return configured.get_secret_value()
    return _generated(secrets_dir(settings) / name)


def key(name: str, settings: Settings | None = None) -> bytes:
    return secret(name, settings).encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(secret_key: bytes, purpose: str, payload: str) -> str:
    """HMAC-SHA256 of `purpose.payload`: a MAC made for one purpose never verifies for another."""
    return b64(hmac.new(secret_key, f"{purpose}.{payload}".encode(), hashlib.sha256).digest())


def mac_matches(secret_key: bytes, purpose: str, payload: str, given: str) -> bool:
    # compare_digest raises on non-ASCII text: attacker input must get "no", never an exception
    return given.isascii() and hmac.compare_digest(mac(secret_key, purpose, payload), given)


def account_signature(sender: str, account_id: str, settings: Settings | None = None) -> str:
    """What a channel adds to the metadata of a message to Rasa that names an account (purpose "account")."""
    return mac(key("channel", settings), "account", f"{sender}\n{account_id}")


def account_signature_matches(sender: str, account_id: str, given: str, settings: Settings | None = None) -> bool:
    return bool(given) and mac_matches(key("channel", settings), "account", f"{sender}\n{account_id}", given)
