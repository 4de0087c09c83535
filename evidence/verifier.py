"""Standalone verifier for duebot evidence: RFC 6962 proofs, C2SP signed-note checkpoints and bundles.

This file has no dependency outside the Python standard library (it uses `cryptography` for Ed25519
when present and falls back to a small pure-Python RFC 8032 verifier otherwise). It is copied verbatim
into every exported bundle as `verify_bundle.py`, so a court or auditor can run
`python3 verify_bundle.py bundle.zip` with nothing from duebot installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence

# ---------------------------------------------------------------- RFC 6962 §2.1 hashing

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes; pairing level by level and promoting an odd last node is RFC 6962's split."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = [sha(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf hash and its audit path."""
    if not 0 <= index < size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: check that the tree of size2 extends the tree of size1 without rewriting it."""
    if size1 < 0 or size2 < size1 or any(len(p) != 32 for p in proof):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node of the path
        path.insert(0, root1)
    if not path:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# ---------------------------------------------------------------- Ed25519 (RFC 8032 §5.1.7, verify only)

_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0) or 0
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _add(p: tuple[int, ...], q: tuple[int, ...]) -> tuple[int, int, int, int]:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, p: tuple[int, ...]) -> tuple[int, ...]:
    q: tuple[int, ...] = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _decode_point(b: bytes) -> tuple[int, int, int, int] | None:
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _ed25519_verify_pure(public_key: bytes, message: bytes, signature: bytes) -> bool:
    a, r = _decode_point(public_key), _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _Q
    left, right = _mul(s, _G), _add(r, _mul(h, a))
    same_x = (left[0] * right[2] - right[0] * left[2]) % _P == 0
    return same_x and (left[1] * right[2] - right[1] * left[2]) % _P == 0


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # the bundle must verify on a bare Python
        return _ed25519_verify_pure(public_key, message, signature)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# ---------------------------------------------------------------- C2SP signed-note and tlog-checkpoint

ALG_ED25519 = 0x01


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def parse_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """`<name>+<hex key id>+<base64(0x01 || public key)>` -> (name, key id, public key)."""
    name, hex_id, b64 = vkey.strip().split("+", 2)  # base64 may itself contain "+"
    raw = base64.b64decode(b64, validate=True)
    if not name or len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ValueError("not an Ed25519 note verifier key")
    kid = bytes.fromhex(hex_id)
    if kid != key_id(name, raw[1:]):
        raise ValueError("verifier key id does not match its name and public key")
    return name, kid, raw[1:]


def open_note(note: bytes, vkey: str) -> str:
    """Return the note text if a signature line by `vkey` verifies; raise ValueError otherwise."""
    name, kid, public_key = parse_vkey(vkey)
    text = note.decode("utf-8")
    sep = text.rfind("\n\n")
    if sep < 0 or not text.endswith("\n"):
        raise ValueError("malformed signed note")
    body, sigs = text[: sep + 1], text[sep + 2 :]
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise ValueError("signed note contains control characters")
    verified = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise ValueError(f"malformed signature line {line!r}")
        sig_name, _, b64 = line[2:].rpartition(" ")
        raw = base64.b64decode(b64, validate=True)
        if sig_name != name or raw[:4] != kid:
            continue  # unknown key: ignored per the spec
        if not ed25519_verify(public_key, body.encode("utf-8"), raw[4:]):
            raise ValueError("checkpoint signature does not verify")
        verified = True
    if not verified:
        raise ValueError("no signature by the trusted key")
    return body


def parse_checkpoint(body: str) -> tuple[str, int, bytes, list[str]]:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise ValueError("malformed checkpoint body")
    origin, size_s, root_b64 = lines[0], lines[1], lines[2]
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise ValueError("malformed checkpoint size")
    root = base64.b64decode(root_b64, validate=True)
    if len(root) != 32:
        raise ValueError("checkpoint root is not 32 bytes")
    return origin, int(size_s), root, lines[3:-1]


# ---------------------------------------------------------------- deterministic zip container

_DOS_DATE_1980 = (0 << 9) | (1 << 5) | 1


def canonical_zip(members: Sequence[tuple[str, bytes]]) -> bytes:
    """Stored (uncompressed) zip with fixed metadata: the container itself is reproducible byte for byte."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data in members:
        raw_name, crc, offset = name.encode("utf-8"), zlib.crc32(data), out.tell()
        if len(data) >= 0xFFFFFFFF:
            raise ValueError("member too large for a non-zip64 bundle")
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x0800, 0, 0, _DOS_DATE_1980, crc,
                              len(data), len(data), len(raw_name), 0))
        out.write(raw_name)
        out.write(data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x0800, 0, 0, _DOS_DATE_1980,
                                  crc, len(data), len(data), len(raw_name), 0, 0, 0, 0, 0o100644 << 16,
                                  offset))
        central.write(raw_name)
    cd_offset, cd = out.tell(), central.getvalue()
    out.write(cd)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), cd_offset, 0))
    return out.getvalue()


# ---------------------------------------------------------------- transcript rendering (bundle format 1)


def render_transcript(records: Sequence[dict], payload: Callable[[str], bytes | None]) -> str:
    """Human-readable transcript; regenerated by the verifier, so an edited transcript.txt is detected."""
    lines = []
    for rec in records:
        if rec.get("kind") != "turn":
            continue
        body = rec.get("body", {})
        ref = rec.get("payloads", {}).get("text")
        if ref is None:
            text = "(no text)"
        else:
            raw = payload(ref["sha256"])
            text = "[text erased under retention]" if raw is None else raw.decode("utf-8", "replace")
        lines.append(f"[{body.get('started_at', rec.get('ts'))}] {body.get('speaker', '?')} "
                     f"({body.get('channel', '?')}): {text}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- bundle verification

BUNDLE_FORMAT = 1
FIXED_MEMBERS = ("README.txt", "transcript.txt", "records.jsonl", "proofs.json", "checkpoint",
                 "public.vkey", "verify_bundle.py")


def verify_bundle_bytes(blob: bytes, trusted_vkey: str | None = None) -> tuple[list[str], dict]:
    """Return (errors, summary); an empty error list means the bundle is intact."""
    try:
        return _verify_bundle_bytes(blob, trusted_vkey)
    except Exception as exc:  # noqa: BLE001 - malformed content of any shape is a verification failure
        return [f"malformed bundle: {type(exc).__name__}: {exc}"], {}


def _verify_bundle_bytes(blob: bytes, trusted_vkey: str | None) -> tuple[list[str], dict]:
    errors: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            members = [(info.filename, zf.read(info)) for info in zf.infolist()]  # read() checks CRC-32
    except Exception as exc:  # noqa: BLE001 - any failure to read the container means it was damaged
        return [f"bundle container is damaged: {exc}"], {}
    if canonical_zip(members) != blob:
        errors.append("bundle container differs from its canonical form (bytes altered or re-zipped)")
    files = dict(members)
    missing = [name for name in FIXED_MEMBERS if name not in files]
    if missing:
        return errors + [f"bundle lacks {', '.join(missing)}"], {}
    try:
        vkey = files["public.vkey"].decode().strip()
        if trusted_vkey is not None and vkey != trusted_vkey.strip():
            errors.append("bundle public key is not the trusted key")
        body = open_note(files["checkpoint"], vkey)
        origin, size, root, extensions = parse_checkpoint(body)
        proofs = json.loads(files["proofs.json"])
    except (ValueError, UnicodeDecodeError) as exc:
        return errors + [f"checkpoint/key/proofs invalid: {exc}"], {}
    if proofs.get("format") != BUNDLE_FORMAT or proofs.get("tree_size") != size \
            or proofs.get("root_hash") != root.hex() or proofs.get("origin") != origin:
        errors.append("proofs.json does not match the signed checkpoint")
    lines = files["records.jsonl"].split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    entries = proofs.get("records", [])
    if len(lines) != len(entries):
        errors.append(f"records.jsonl has {len(lines)} records but proofs.json has {len(entries)}")
    records: list[dict] = []
    for n, (line, entry) in enumerate(zip(lines, entries, strict=False)):
        lh = leaf_hash(line)
        if lh.hex() != entry.get("leaf_hash"):
            errors.append(f"record line {n + 1} (log index {entry.get('index')}): leaf hash mismatch")
            continue
        try:
            proof = [bytes.fromhex(h) for h in entry["proof"]]
        except (KeyError, ValueError):
            errors.append(f"record line {n + 1}: malformed proof")
            continue
        if not verify_inclusion(lh, int(entry["index"]), size, proof, root):
            errors.append(f"record line {n + 1} (log index {entry['index']}): inclusion proof fails")
        try:
            rec = json.loads(line)
        except ValueError:
            errors.append(f"record line {n + 1}: not JSON")
            continue
        if rec.get("conversation_id") != proofs.get("conversation_id"):
            errors.append(f"record line {n + 1}: belongs to another conversation")
        records.append(rec)
    erased = {d for r in records if r.get("kind") == "erasure" for d in r.get("body", {}).get("erased", [])}
    referenced = {ref["sha256"] for r in records for ref in r.get("payloads", {}).values()}
    payload_files = {name[len("payloads/"):]: data for name, data in files.items()
                     if name.startswith("payloads/")}
    for digest in sorted(referenced):
        data = payload_files.get(digest)
        if data is None:
            if digest not in erased:
                errors.append(f"payload {digest} is missing and no erasure record covers it")
        elif hashlib.sha256(data).hexdigest() != digest:
            errors.append(f"payload {digest} does not match its digest")
    extra = set(files) - set(FIXED_MEMBERS) - {f"payloads/{d}" for d in referenced}
    if extra:
        errors.append(f"unexpected files in bundle: {', '.join(sorted(extra))}")
    if render_transcript(records, payload_files.get).encode("utf-8") != files["transcript.txt"]:
        errors.append("transcript.txt does not match the records and payloads")
    summary = {"origin": origin, "tree_size": size, "root_hash": root.hex(),
               "checkpoint_extensions": extensions,
               "conversation_id": proofs.get("conversation_id"), "records": len(records), "public_key": vkey}
    return errors, summary


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python3 verify_bundle.py BUNDLE.zip [TRUSTED_VKEY]")
        return 2
    with open(args[0], "rb") as fh:
        errors, summary = verify_bundle_bytes(fh.read(), args[1] if len(args) > 1 else None)
    for key, value in summary.items():
        print(f"{key}: {value}")
    for err in errors:
        print(f"FAIL: {err}")
    print("BUNDLE INTACT" if not errors else "BUNDLE NOT INTACT")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
