"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note format, with an Ed25519 log key.

Body: "<origin>\n<size>\n<base64 root>\ntime <RFC 3339 UTC>\n", then a blank line and
"— <origin> <base64(key id || signature)>\n". The key is generated at first start; its public part is
exported as a note verifier key (`public.vkey`, "<name>+<hex key id>+<base64(0x01 || pubkey)>").
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from duebot.evidence.records import utc_now
from duebot.evidence.store import durable_write
from duebot.evidence.verifier import ALG_ED25519, key_id, open_note, parse_checkpoint


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: str
    note: bytes  # the full signed note, exactly as stored and exported

    @classmethod
    def parse(cls, note: bytes, vkey: str) -> Checkpoint:
        origin, size, root, extensions = parse_checkpoint(open_note(note, vkey))
        time = next((e[5:] for e in extensions if e.startswith("time ")), "")
        return cls(origin, size, root, time, note)


class LogKey:
    """The Ed25519 signing key of one log; `origin` doubles as the note key name."""

    def __init__(self, origin: str, private: Ed25519PrivateKey) -> None:
        self.origin = origin
        self._private = private
        self.public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)
        self.key_id = key_id(origin, self.public)
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()
        self.vkey = f"{origin}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def load_or_create(cls, directory: Path) -> LogKey:
        key_file, origin_file = directory / "log.key", directory / "origin"
        if not key_file.exists():
            # Generated once: origin carries a random id so two deployments never share a log identity.
            origin = f"duebot.evidence/{secrets.token_hex(8)}"
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            durable_write(origin_file, origin.encode() + b"\n")
            durable_write(key_file, pem, mode=0o600)
            key = cls(origin, private)
            durable_write(directory / "public.vkey", key.vkey.encode() + b"\n")
            return key
        origin = origin_file.read_text().strip()
        private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{key_file} is not an Ed25519 key")
        key = cls(origin, private)
        vkey_file = directory / "public.vkey"
        if not vkey_file.exists():
            durable_write(vkey_file, key.vkey.encode() + b"\n")
        return key

    def sign(self, size: int, root: bytes, time: str | None = None) -> Checkpoint:
        time = time or utc_now()
        body = f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time}\n".encode()
        sig = base64.b64encode(self.key_id + self._private.sign(body)).decode()
        note = body + f"\n\u2014 {self.origin} {sig}\n".encode()
        return Checkpoint(self.origin, size, root, time, note)


def read_vkey(directory: Path) -> str:
    return (directory / "public.vkey").read_text().strip()


def checkpoint_name(size: int) -> str:
    return f"{size:016d}"


def list_checkpoints(directory: Path) -> list[Path]:
    cdir = directory / "checkpoints"
    if not cdir.is_dir():
        return []
    return sorted(p for p in cdir.iterdir() if p.name.isdigit())


def store_checkpoint(directory: Path, cp: Checkpoint) -> None:
    cdir = directory / "checkpoints"
    cdir.mkdir(exist_ok=True)
    durable_write(cdir / checkpoint_name(cp.size), cp.note)
    durable_write(directory / "checkpoint", cp.note)  # latest, for tools that poll one well-known name


def latest_checkpoint(directory: Path, vkey: str) -> Checkpoint | None:
    files = list_checkpoints(directory)
    return Checkpoint.parse(files[-1].read_bytes(), vkey) if files else None


