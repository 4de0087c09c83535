"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note format, with an Ed25519 log key.

Body: "<origin>\n<size>\n<base64 root>\ntime <RFC 3339 UTC>\n", then a blank line and
"— <origin> <base64(key id || signature)>\n". The key is generated at first start; its public part is
exported as a note verifier key (`public.vkey`, "<name>+<hex key id>+<base64(0x01 || pubkey)>").
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from duebot.evidence.records import utc_now
from duebot.evidence.store import CorruptLog, durable_write, fsync_dir
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
    def load_or_create(cls, directory: Path, key_file: Path | None = None) -> LogKey:
        """The log's key: from `key_file` when given (DUEBOT_EVIDENCE_KEY_FILE, outside the data directory), else
        `log.key` beside the log. Generated only for a new log (no public.vkey, no checkpoint yet): a missing key
        of an existing log is an error, never a silent new identity. A `log.key` found beside the log when a key
        file is configured is moved there. The key file is kept mode 0600."""
        beside, origin_file, vkey_file = directory / "log.key", directory / "origin", directory / "public.vkey"
        path = key_file if key_file is not None else beside
        if key_file is not None and beside.exists() and not (key_file.exists() and key_file.samefile(beside)):
            _move_key_out(beside, key_file)
        fresh = not vkey_file.exists() and not list_checkpoints(directory)
        if path.exists():
            _private_mode(path)
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 key")
        elif fresh:
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            path.parent.mkdir(parents=True, exist_ok=True)
            durable_write(path, pem, mode=0o600)
        else:
            raise CorruptLog(f"the signing key of the evidence log in {directory} is missing ({path}); it has "
                             "signed checkpoints, so a new key would be a new identity. Restore the key file (or "
                             "set DUEBOT_EVIDENCE_KEY_FILE to where it is).")
        if origin_file.exists():
            raw = origin_file.read_bytes()
            origin = raw.decode("utf-8", "replace").strip()
            if raw != origin.encode() + b"\n" or not _ORIGIN.match(origin):
                raise CorruptLog(f"{origin_file} is damaged: {raw!r} is not one origin line")
        elif fresh:
            # Generated once: origin carries a random id so two deployments never share a log identity.
            origin = f"duebot.evidence/{secrets.token_hex(8)}"
            durable_write(origin_file, origin.encode() + b"\n")
        else:
            raise CorruptLog(f"{origin_file} is missing; it is the name in public.vkey: restore it")
        key = cls(origin, private)
        if vkey_file.exists():
            if vkey_file.read_text().strip() != key.vkey:
                raise CorruptLog(f"{vkey_file} is not the public key of {path} for origin {origin} (origin file "
                                 "altered, or the key replaced)")
        else:
            durable_write(vkey_file, key.vkey.encode() + b"\n")
        return key

    def sign(self, size: int, root: bytes, time: str | None = None) -> Checkpoint:
        time = time or utc_now()
        body = f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time}\n".encode()
        sig = base64.b64encode(self.key_id + self._private.sign(body)).decode()
        note = body + f"\n\u2014 {self.origin} {sig}\n".encode()
        return Checkpoint(self.origin, size, root, time, note)


_ORIGIN = re.compile(r"^[\x21-\x2a\x2c-\x7e]+$")  # a note key name: printable ASCII, no space, no "+"


def _private_mode(path: Path) -> None:
    """A signing key readable by group or others is tightened to 0600 (refused where that is not possible)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            os.chmod(path, 0o600)
        except OSError as exc:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}) and cannot be made 0600: "
                                  f"{exc}") from exc


def _move_key_out(beside: Path, key_file: Path) -> None:
    """DUEBOT_EVIDENCE_KEY_FILE newly set on a log whose key sits beside it: move the key out (once)."""
    pem = beside.read_bytes()
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        durable_write(key_file, pem, mode=0o600)
    elif key_file.read_bytes() != pem:
        raise CorruptLog(f"two signing keys: {beside} and {key_file} (DUEBOT_EVIDENCE_KEY_FILE) differ; keep the "
                         "one that matches public.vkey and remove the other")
    beside.unlink()
    fsync_dir(beside.parent)


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


