"""Offline-verifiable export of one conversation: a deterministic zip that needs nothing but itself.

Members: README.txt, transcript.txt, records.jsonl (exact leaf bytes, one per line), proofs.json (inclusion
proof of each record against the checkpoint), checkpoint (C2SP signed note), public.vkey, verify_bundle.py
(a verbatim copy of verifier.py: stdlib only) and payloads/<sha256> (turn text and audio not yet erased).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from duebot.evidence import verifier
from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import Record

README = """duebot evidence bundle (format {fmt})
======================================

Conversation: {conv}
Log origin:   {origin}
Checkpoint:   {size} records, root {root}, signed {time}
Public key:   {vkey}

Verify offline (Python 3.9+, nothing else needed; `cryptography` is used when installed):

    python3 verify_bundle.py THIS_BUNDLE.zip [TRUSTED_PUBLIC_KEY]

Pass the operator's published key as TRUSTED_PUBLIC_KEY to pin it; otherwise the key in public.vkey is
used and you should compare it with the published one yourself.

What is checked: the zip container is byte-for-byte canonical (so any altered byte is detected); the
checkpoint is an Ed25519 signed note (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) by public.vkey;
every line of records.jsonl hashes (RFC 6962 leaf hash SHA-256(0x00 || line)) to the leaf in proofs.json,
whose inclusion proof (RFC 9162 section 2.1.3.2) leads to the signed root; every payload file matches the
SHA-256 the records commit to, and a payload may be absent only if an erasure record in the bundle lists
it; transcript.txt is regenerated from the records and payloads and must match exactly.

Each record holds its UTC timestamp ("ts") inside the hashed bytes. Records of kind "turn" carry speaker,
channel, start/end times, ASR confidence and emotion score, with the text and audio in payloads/<sha256>.

The operator keeps payloads encrypted at rest; this bundle carries them decrypted. The records commit to the
SHA-256 of these plaintext bytes (never of a ciphertext, which changes when keys rotate), so checking them needs
no key: treat the bundle as the personal data it contains.
"""


def export_conversation(log: EvidenceLog, conversation_id: str, out: Path | str, *, user: str,
                        purpose: str = "export", role: str | None = None, via: str | None = None) -> Path:
    """Write the bundle; the access itself is logged first, so the bundle contains its own access record (with the
    acting role and the way in, e.g. role "cli" via "cli", when the caller names them)."""
    if not log.records_for(conversation_id):
        raise KeyError(f"no records for conversation {conversation_id}")
    extra = {k: v for k, v in (("role", role), ("via", via)) if v}
    log.append("access", {"user": user, "purpose": purpose, **extra}, conversation_id=conversation_id)
    cp = log.checkpoint()
    records = [r for r in log.records_for(conversation_id) if r.index < cp.size]
    payloads: dict[str, bytes] = {}
    erased = {d for r in records if r.kind == "erasure" for d in r.body.get("erased", [])}
    for rec in records:
        for ref in rec.committed_payloads().values():  # the sealed personal values too, until erased
            data = log.payload(ref["sha256"])
            if data is not None:
                payloads[ref["sha256"]] = data
            elif ref["sha256"] not in erased:
                raise FileNotFoundError(f"payload {ref['sha256']} of record {rec.index} is missing")
    proofs = {
        "format": verifier.BUNDLE_FORMAT, "conversation_id": conversation_id, "origin": cp.origin,
        "tree_size": cp.size, "root_hash": cp.root.hex(),
        "records": [{"index": r.index, "kind": r.kind, "leaf_hash": log.leaf(r.index).hex(),
                     "proof": [h.hex() for h in log.inclusion_proof(r.index, cp.size)]} for r in records],
    }
    rows = [json.loads(r.data) for r in records]
    members = [
        ("README.txt", README.format(fmt=verifier.BUNDLE_FORMAT, conv=conversation_id, origin=cp.origin,
                                     size=cp.size, root=cp.root.hex(), time=cp.time, vkey=log.vkey).encode()),
        ("transcript.txt", verifier.render_transcript(rows, payloads.get).encode("utf-8")),
        ("records.jsonl", b"".join(r.data + b"\n" for r in records)),
        ("proofs.json", json.dumps(proofs, indent=1, sort_keys=True).encode() + b"\n"),
        ("checkpoint", cp.note),
        ("public.vkey", log.vkey.encode() + b"\n"),
        ("verify_bundle.py", Path(verifier.__file__).read_bytes()),
    ] + [(f"payloads/{d}", payloads[d]) for d in sorted(payloads)]
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(verifier.canonical_zip(members))
    os.replace(tmp, out)
    return out


def verify_bundle(path: Path | str, trusted_vkey: str | None = None) -> tuple[list[str], dict]:
    """Verify using only the bundle's bytes (and the standalone verifier); returns (errors, summary)."""
    return verifier.verify_bundle_bytes(Path(path).read_bytes(), trusted_vkey)


def transcript_records(records: list[Record]) -> list[Record]:
    return [r for r in records if r.kind == "turn"]
