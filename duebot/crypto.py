"""Encryption at rest: the keyring that seals personal data (account store columns, evidence payloads).

Envelope. Every sealed value says how to open it: `enc1:<algorithm>:<key id>:` then the 12-byte nonce and the
ciphertext with its 16-byte tag. Columns hold the text form (the part after the header in unpadded base64url),
payload files the binary form (the same header in ASCII, then the raw bytes). The authenticated data is the header
plus a context naming where the value lives (`accounts.phone:A-1`, `evidence.payload:<sha256>`): a flipped byte
anywhere, a changed algorithm or key id, or a value copied into another row or file fails to open (CryptoError),
it never decrypts to something else.

Algorithms. `aes-256-gcm` (the default) and `sm4-gcm` (GB/T 32907 block cipher in GCM, RFC 8998), both through
`cryptography`/OpenSSL. A pack asks for SM4 with `encryption: sm4-gcm` (policies/packs/cn.yml) for its accounts'
columns; what no pack decides (evidence payloads, opt-outs, events' and disputes' details) uses DUEBOT_ENCRYPTION.
Random 96-bit nonces: rotate a key well before 2^32 values were sealed with it.

Keys. A data key is a secret of at least 32 characters: DUEBOT_DATA_KEY, else the one generated into
`<data dir>/secrets/data_key` (duebot/secrets.py). Its id is derived from it (16 hex digits), so a key cannot be
named wrongly. The cipher keys are derived per algorithm with HKDF (SHA-256 for AES, SM3 for SM4). Retired keys
(DUEBOT_DATA_OLD_KEYS) still open what they sealed; `duebot accounts rekey` re-seals everything with the current
key, after which they can go (docs/security.md, "Rotating the data key").

Blind index. Equality lookups on a sealed column (an inbound text finds its account by phone number) use a keyed
HMAC-SHA256 of the normalised value under DUEBOT_BLIND_INDEX_KEY, truncated to 128 bits: equal numbers have equal
indexes, and without the key an index says nothing about the number (10^10 numbers are not enough entropy for an
unkeyed hash). Old index keys (DUEBOT_BLIND_INDEX_OLD_KEYS) are still looked up until rekey recomputed the
indexes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from duebot.settings import ENCRYPTION_ALGORITHMS, Settings, load_settings

ALGORITHMS = ENCRYPTION_ALGORITHMS
AES_GCM, SM4_GCM = ALGORITHMS
DEFAULT_ALGORITHM = AES_GCM
MAGIC = "enc1"
NONCE = 12
TAG = 16
MIN_SECRET = 32
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
# A whole text envelope, and anything shaped like one whose magic was damaged (so it is never taken for plaintext).
_TEXT = re.compile(r"^([A-Za-z0-9]{1,8}):([a-z0-9-]{1,24}):([0-9A-Za-z]{1,32}):([A-Za-z0-9_-]+)$")


class CryptoError(ValueError):
    """A sealed value that cannot be opened: altered, cut short, sealed for another place, or with a key this
    keyring does not hold."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Envelope:
    algorithm: str
    key_id: str
    body: bytes  # nonce || ciphertext || tag

    @property
    def header(self) -> bytes:
        return f"{MAGIC}:{self.algorithm}:{self.key_id}:".encode()

    def text(self) -> str:
        return self.header.decode() + _b64(self.body)

    def blob(self) -> bytes:
        return self.header + self.body

    @classmethod
    def parse_text(cls, value: str) -> Envelope:
        match = _TEXT.match(value)
        if match is None:
            raise CryptoError("not a sealed value")
        magic, algorithm, key_id, body = match.groups()
        if magic != MAGIC:
            raise CryptoError(f"unknown envelope version {magic!r}")
        try:
            raw = _unb64(body)
        except ValueError:
            raise CryptoError("sealed value is not base64url") from None
        return cls._checked(algorithm, key_id, raw)

    @classmethod
    def parse_blob(cls, blob: bytes) -> Envelope:
        parts = blob.split(b":", 3)
        if len(parts) != 4 or parts[0] != MAGIC.encode():
            raise CryptoError("not a sealed blob")
        try:
            algorithm, key_id = parts[1].decode("ascii"), parts[2].decode("ascii")
        except UnicodeDecodeError:
            raise CryptoError("sealed blob header is not ASCII") from None
        return cls._checked(algorithm, key_id, parts[3])

    @classmethod
    def _checked(cls, algorithm: str, key_id: str, body: bytes) -> Envelope:
        if algorithm not in ALGORITHMS:
            raise CryptoError(f"unknown algorithm {algorithm!r}")
        if not _KEY_ID.match(key_id):
            raise CryptoError(f"malformed key id {key_id!r}")
        if len(body) < NONCE + TAG:
            raise CryptoError("sealed value is cut short")
        return cls(algorithm, key_id, body)


def looks_sealed(value: str) -> bool:
    """Whether a column value is (or was, before damage) an envelope rather than legacy plaintext."""
    return _TEXT.match(value) is not None


def is_sealed_blob(blob: bytes) -> bool:
    return blob.startswith(MAGIC.encode() + b":")


def _hkdf(secret: bytes, length: int, info: bytes, algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    return HKDF(algorithm or hashes.SHA256(), length, salt=b"duebot at rest v1", info=info).derive(secret)


def _check_secret(value: str, what: str) -> str:
    if len(value) < MIN_SECRET:
        raise CryptoError(f"{what}: at least {MIN_SECRET} characters (generate one with `duebot accounts keygen`)")
    return value


class DataKey:
    """One data key: its id and the cipher key of each algorithm, derived from the secret."""

    def __init__(self, secret: str) -> None:
        self._material = _hkdf(_check_secret(secret, "data key").encode(), 32, b"data key")
        self.id = hmac.new(self._material, b"key id", hashlib.sha256).hexdigest()[:16]

    @cached_property
    def aes(self) -> AESGCM:
        return AESGCM(_hkdf(self._material, 32, AES_GCM.encode()))

    @cached_property
    def sm4(self) -> bytes:
        return _hkdf(self._material, 16, SM4_GCM.encode(), hashes.SM3())

    def encrypt(self, algorithm: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if algorithm == AES_GCM:
            return self.aes.encrypt(nonce, data, aad)
        enc = _sm4(self.sm4, modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        out = enc.update(data) + enc.finalize()
        return out + enc.tag

    def decrypt(self, algorithm: str, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        try:
            if algorithm == AES_GCM:
                return self.aes.decrypt(nonce, data, aad)
            dec = _sm4(self.sm4, modes.GCM(nonce, data[-TAG:])).decryptor()
            dec.authenticate_additional_data(aad)
            return dec.update(data[:-TAG]) + dec.finalize()
        except InvalidTag:
            raise CryptoError("authentication failed: the sealed value was altered, or sealed for another place")\
                from None


def _sm4(key: bytes, mode: modes.GCM) -> Cipher:
    try:
        return Cipher(algorithms.SM4(key), mode)
    except UnsupportedAlgorithm as exc:
        raise CryptoError(f"this OpenSSL build has no SM4-GCM ({exc}); a pack asks for sm4-gcm") from None


def normalise_phone(value: str) -> str:
    """The form a number is indexed in: E.164 as stored, with spaces, dashes, dots and brackets dropped."""
    return re.sub(r"[\s\-().]", "", value)


class Keyring:
    """The current data key (seals), every configured key (open), and the blind-index keys."""

    def __init__(self, current: str, old: Iterable[str] = (), *, index_key: str, old_index_keys: Iterable[str] = (),
                 default_algorithm: str = DEFAULT_ALGORITHM) -> None:
        if default_algorithm not in ALGORITHMS:
            raise CryptoError(f"unknown algorithm {default_algorithm!r} (known: {', '.join(ALGORITHMS)})")
        self.current = DataKey(current)
        self.keys = {self.current.id: self.current}
        for secret in old:
            key = DataKey(secret)
            self.keys.setdefault(key.id, key)
        self.default_algorithm = default_algorithm
        index_secrets = [_check_secret(s, "blind index key") for s in (index_key, *old_index_keys)]
        self._index_keys = [_hkdf(s.encode(), 32, b"blind index") for s in dict.fromkeys(index_secrets)]

    @property
    def current_id(self) -> str:
        return self.current.id

    # ------------------------------------------------------------ sealing

    @staticmethod
    def _aad(header: bytes, context: str) -> bytes:
        return header + b"\x00" + context.encode()

    def seal(self, data: bytes, context: str, algorithm: str | None = None) -> Envelope:
        algorithm = algorithm or self.default_algorithm
        if algorithm not in ALGORITHMS:
            raise CryptoError(f"unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
        nonce = os.urandom(NONCE)
        header = Envelope(algorithm, self.current.id, b"").header
        return Envelope(algorithm, self.current.id,
                        nonce + self.current.encrypt(algorithm, nonce, data, self._aad(header, context)))

    def open(self, envelope: Envelope, context: str) -> bytes:
        key = self.keys.get(envelope.key_id)
        if key is None:
            raise CryptoError(f"sealed with key {envelope.key_id}, which is not configured (DUEBOT_DATA_KEY, "
                              "DUEBOT_DATA_OLD_KEYS)")
        nonce, data = envelope.body[:NONCE], envelope.body[NONCE:]
        return key.decrypt(envelope.algorithm, nonce, data, self._aad(envelope.header, context))

    def seal_text(self, value: str, context: str, algorithm: str | None = None) -> str:
        return self.seal(value.encode("utf-8"), context, algorithm).text()

    def open_text(self, stored: str, context: str) -> str:
        try:
            return self.open(Envelope.parse_text(stored), context).decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("sealed value is not UTF-8 text") from None

    def seal_blob(self, data: bytes, context: str, algorithm: str | None = None) -> bytes:
        return self.seal(data, context, algorithm).blob()

    def open_blob(self, blob: bytes, context: str) -> bytes:
        return self.open(Envelope.parse_blob(blob), context)

    def is_current(self, envelope: Envelope, algorithm: str | None = None) -> bool:
        """Sealed with the current key and the algorithm wanted for it (else rekey re-seals it)."""
        return envelope.key_id == self.current.id and envelope.algorithm == (algorithm or self.default_algorithm)

    # ------------------------------------------------------------ blind index

    def index(self, value: str, purpose: str = "phone") -> str:
        """The blind index of `value` under the current index key (what is stored)."""
        return self.indexes(value, purpose)[0]

    def indexes(self, value: str, purpose: str = "phone") -> tuple[str, ...]:
        """Its index under every configured index key, current first (what is looked up)."""
        message = purpose.encode() + b"\x00" + normalise_phone(value).encode("utf-8")
        return tuple(hmac.new(k, message, hashlib.sha256).hexdigest()[:32] for k in self._index_keys)


# ---------------------------------------------------------------- the deployment's keyring

_cache: dict[tuple, Keyring] = {}
_cache_lock = threading.Lock()


def keyring(settings: Settings | None = None) -> Keyring:
    """The keyring of these settings (default: the process's): built once per distinct configuration."""
    from duebot.secrets import secret

    settings = settings or load_settings()
    enc = settings.encryption
    current, index_key = secret("data_key", settings), secret("blind_index", settings)
    cache_key = (current, enc.old_keys, index_key, enc.old_index_keys, enc.algorithm)
    with _cache_lock:
        found = _cache.get(cache_key)
        if found is None:
            found = _cache[cache_key] = Keyring(current, enc.old_keys, index_key=index_key,
                                                old_index_keys=enc.old_index_keys, default_algorithm=enc.algorithm)
        return found


def new_secret() -> str:
    """A fresh data or index key (what `duebot accounts keygen` prints)."""
    return _b64(os.urandom(32))
