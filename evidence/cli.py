"""`duebot evidence ...` commands (a Typer sub-app; run standalone as `python -m duebot.evidence.cli`)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer

from duebot.evidence.bundle import export_conversation, verify_bundle
from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog
from duebot.evidence.store import CorruptLog
from duebot.settings import load_settings

app = typer.Typer(help="Tamper-evident evidence log: verify, export, prove.", no_args_is_help=True)

DirOption = typer.Option(None, "--dir", help="Evidence directory (default: $DUEBOT_DATA_DIR/evidence).")
OutOption = typer.Option(..., "--out", help="Bundle to write (.zip).")
TrustedKeyOption = typer.Option(None, "--trusted-key",
                                help="Pinned public key (public.vkey as first exported) to verify checkpoints against "
                                     "instead of the one beside the log (default: DUEBOT_EVIDENCE_TRUSTED_KEY).")
WitnessOption = typer.Option(None, "--witness-dir",
                             help="Witness directory whose last checkpoint the log must extend (default: "
                                  "DUEBOT_EVIDENCE_WITNESS_DIR).")


def _dir(directory: Path | None) -> Path:
    return directory if directory is not None else load_settings().data_dir / "evidence"


def _open(directory: Path | None) -> EvidenceLog:
    """Open the log for writing with its configured key file and witness (DUEBOT_EVIDENCE_KEY_FILE, ..._WITNESS_DIR);
    a log that cannot be trusted (missing key, damaged origin, refused by the witness) is a clear error, exit 1."""
    evidence = load_settings().evidence
    try:
        return EvidenceLog.open(_dir(directory), key_file=evidence.key_file, witness=evidence.witness_dir)
    except CorruptLog as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def verify(directory: Path | None = DirOption,
           skip_payloads: bool = typer.Option(False, help="Do not re-hash payload files."),
           trusted_key: Path | None = TrustedKeyOption,
           witness_dir: Path | None = WitnessOption,
           no_witness: bool = typer.Option(False, "--no-witness", help="Skip the witness check.")) -> None:
    """Recompute everything from storage (fsck); exit 0 when intact, 1 naming the first bad record."""
    evidence = load_settings().evidence
    key_path = trusted_key if trusted_key is not None else evidence.trusted_key
    witness_dir = None if no_witness else (witness_dir if witness_dir is not None else evidence.witness_dir)
    trusted_vkey = None
    if key_path is not None:
        try:
            trusted_vkey = key_path.read_text().strip()
        except OSError as exc:
            typer.echo(f"error: pinned key {key_path} unreadable: {exc}", err=True)
            raise typer.Exit(2) from None
    rep = verify_directory(_dir(directory), check_payloads=not skip_payloads, trusted_vkey=trusted_vkey,
                           witness_dir=witness_dir)
    if rep.key_pinned:
        typer.echo(f"key: pinned public key {key_path} ({rep.key})")
    elif rep.key:
        typer.echo(f"key: public.vkey beside the log ({rep.key}), NOT pinned: whoever can write the log can "
                   "replace it; pass --trusted-key or set DUEBOT_EVIDENCE_TRUSTED_KEY")
    typer.echo(f"witness: {rep.witness}")
    for warning in rep.warnings:
        typer.echo(f"warning: {warning}")
    for error in rep.errors:
        typer.echo(f"error: {error}", err=True)
    if not rep.ok:
        bad = rep.first_bad_index
        where = f"first bad record: {bad}" if bad is not None else "log damaged"
        typer.echo(f"NOT INTACT: {where}", err=True)
        raise typer.Exit(1)
    typer.echo(f"intact: {rep.size} records, root {rep.root_hex}, {rep.checkpoints} checkpoints, "
               f"{rep.payloads} payloads" + (f", {rep.erased} erased under retention" if rep.erased else ""))


@app.command()
def export(conversation_id: str, out: Path = OutOption,
           directory: Path | None = DirOption,
           user: str = typer.Option(None, help="Who accesses the transcript (default: login name)."),
           purpose: str = typer.Option("export", help="Why (recorded in the access record).")) -> None:
    """Export one conversation as an offline-verifiable bundle (the access is itself recorded)."""
    with _open(directory) as log:
        try:
            # the access log shows who (the --user named, else the login name) and that it came from the
            # command line (role and way in "cli"), not from a console session with a console role
            path = export_conversation(log, conversation_id, out, user=user or getpass.getuser(),
                                       purpose=purpose, role="cli", via="cli")
        except KeyError as exc:
            typer.echo(f"error: {exc.args[0]}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"wrote {path}")


@app.command("verify-bundle")
def verify_bundle_cmd(bundle: Path,
                      key: str = typer.Option(None, help="Trusted verifier key (or a file).")) -> None:
    """Verify an exported bundle using nothing but its contents (and the pinned key, when one is configured)."""
    if key is None and load_settings().evidence.trusted_key is not None:
        key = str(load_settings().evidence.trusted_key)
        typer.echo(f"trusted key: {key} (DUEBOT_EVIDENCE_TRUSTED_KEY)")
    if key and Path(key).is_file():
        key = Path(key).read_text().strip()
    errors, summary = verify_bundle(bundle, key)
    for name, value in summary.items():
        typer.echo(f"{name}: {value}")
    for error in errors:
        typer.echo(f"error: {error}", err=True)
    if errors:
        typer.echo("BUNDLE NOT INTACT", err=True)
        raise typer.Exit(1)
    typer.echo("BUNDLE INTACT")


@app.command()
def prove(index: int, directory: Path | None = DirOption,
          size: int = typer.Option(None, help="Tree size (default: latest checkpoint's if it covers INDEX)."),
          ) -> None:
    """Print the RFC 6962 inclusion proof of record INDEX as JSON."""
    log = EvidenceLog.open(_dir(directory), readonly=True)
    cp = log.last_checkpoint
    if size is None:
        size = cp.size if cp is not None and index < cp.size else log.size
    if not 0 <= index < size <= log.size:
        typer.echo(f"error: no record {index} in a tree of size {size} (log size {log.size})", err=True)
        raise typer.Exit(1)
    out = {"index": index, "tree_size": size, "leaf_hash": log.leaf(index).hex(),
           "root_hash": log.root(size).hex(), "proof": [h.hex() for h in log.inclusion_proof(index, size)],
           "record": log.read(index).decode("utf-8")}
    if cp is not None and cp.size == size:
        out["checkpoint"] = cp.note.decode("utf-8")
    typer.echo(json.dumps(out, indent=1, ensure_ascii=False))


@app.command()
def consistency(old: int, new: int = typer.Argument(None), directory: Path | None = DirOption) -> None:
    """Print the RFC 6962 consistency proof between tree sizes OLD and NEW (default: current size)."""
    log = EvidenceLog.open(_dir(directory), readonly=True)
    new = log.size if new is None else new
    if not 0 <= old <= new <= log.size:
        typer.echo(f"error: need 0 <= OLD <= NEW <= {log.size}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"old_size": old, "new_size": new, "old_root": log.root(old).hex(),
                           "new_root": log.root(new).hex(),
                           "proof": [h.hex() for h in log.consistency_proof(old, new)]}, indent=1))


@app.command()
def checkpoint(directory: Path | None = DirOption) -> None:
    """Sign a checkpoint now and print it (also exports public.vkey on first start), and publish it to the witness."""
    with _open(directory) as log:
        cp = log.checkpoint()
    problem = log.witness_error  # published when the log closed
    typer.echo(cp.note.decode("utf-8"), nl=False)
    if problem:
        typer.echo(f"warning: {problem}", err=True)


@app.command()
def writer(directory: Path | None = DirOption,
           assess_after: float | None = typer.Option(None,
                                              help="Seconds of quiet before a conversation's three elements "
                                                   "are assessed (default: DUEBOT_EVIDENCE_ASSESS_AFTER).")) -> None:
    """Run the single evidence writer: move records submitted through Redis into the log (`duebot serve` runs it)."""
    import signal

    from duebot import clients
    from duebot.evidence.inbox import EvidenceWriter

    try:
        client = clients.redis_client()
    except clients.RedisNotConfigured as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if assess_after is None:
        assess_after = load_settings().evidence.assess_after
    with _open(directory) as log:
        loop = EvidenceWriter(client, log, assess_after=assess_after)
        signal.signal(signal.SIGTERM, lambda *_: loop.stopping.set())
        evidence = load_settings().evidence
        typer.echo(f"evidence writer: {_dir(directory)} ({log.size} records), stream {loop.stream}, signing key "
                   f"{evidence.key_file or 'log.key beside the log'}, witness {evidence.witness_dir or 'none'}",
                   err=True)
        if log.witness_error:
            typer.echo(f"warning: {log.witness_error}", err=True)
        try:
            loop.run()
        except KeyboardInterrupt:
            pass
        finally:
            loop.close()
            log.checkpoint()


@app.command("dead-letters")
def dead_letters_cmd(count: int = typer.Option(20, help="How many, newest first."),
                     as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Records the writer could not append (malformed, NaN, unknown kind), with why, newest first."""
    from duebot import clients
    from duebot.evidence.inbox import DEAD_LETTERS, dead_letter_count, dead_letters

    try:
        client = clients.redis_client()
    except clients.RedisNotConfigured as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    letters = dead_letters(client, count)
    total = dead_letter_count(client)
    for letter in letters:
        fields = {k: v.decode("utf-8", "replace") for k, v in letter["fields"].items()}
        if as_json:
            typer.echo(json.dumps({**letter, "fields": fields}, ensure_ascii=False))
            continue
        body = fields.get("body", "")
        typer.echo(f"{letter['id']}  {letter.get('at', '')}  kind={fields.get('kind', '?')} "
                   f"rid={fields.get('rid', '?')} conversation={fields.get('conversation_id') or '-'}\n"
                   f"    reason: {letter.get('reason', '')}\n"
                   f"    body: {body[:300]}{'…' if len(body) > 300 else ''}")
    if not as_json:
        typer.echo(f"{total} dead-lettered in all ({DEAD_LETTERS}; counter {DEAD_LETTERS}:count)")


if __name__ == "__main__":
    app()
