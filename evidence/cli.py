"""`duebot evidence ...` commands (a Typer sub-app; run standalone as `python -m duebot.evidence.cli`)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer

from duebot.config import Settings
from duebot.evidence.bundle import export_conversation, verify_bundle
from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog

app = typer.Typer(help="Tamper-evident evidence log: verify, export, prove.", no_args_is_help=True)

DirOption = typer.Option(None, "--dir", help="Evidence directory (default: $DUEBOT_DATA_DIR/evidence).")
OutOption = typer.Option(..., "--out", help="Bundle to write (.zip).")


def _dir(directory: Path | None) -> Path:
    return directory if directory is not None else Settings.from_env().data_dir / "evidence"


@app.command()
def verify(directory: Path | None = DirOption,
           skip_payloads: bool = typer.Option(False, help="Do not re-hash payload files.")) -> None:
    """Recompute everything from storage (fsck); exit 0 when intact, 1 naming the first bad record."""
    rep = verify_directory(_dir(directory), check_payloads=not skip_payloads)
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
               f"{rep.payloads} payloads")


@app.command()
def export(conversation_id: str, out: Path = OutOption,
           directory: Path | None = DirOption,
           user: str = typer.Option(None, help="Who accesses the transcript (default: login name)."),
           purpose: str = typer.Option("export", help="Why (recorded in the access record).")) -> None:
    """Export one conversation as an offline-verifiable bundle (the access is itself recorded)."""
    with EvidenceLog.open(_dir(directory)) as log:
        try:
            path = export_conversation(log, conversation_id, out, user=user or getpass.getuser(),
                                       purpose=purpose)
        except KeyError as exc:
            typer.echo(f"error: {exc.args[0]}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"wrote {path}")


@app.command("verify-bundle")
def verify_bundle_cmd(bundle: Path,
                      key: str = typer.Option(None, help="Trusted verifier key (or a file).")) -> None:
    """Verify an exported bundle using nothing but its contents."""
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
    """Sign a checkpoint now and print it (also exports public.vkey on first start)."""
    with EvidenceLog.open(_dir(directory)) as log:
        cp = log.checkpoint()
    typer.echo(cp.note.decode("utf-8"), nl=False)


if __name__ == "__main__":
    app()


@app.command()
def writer(directory: Path | None = DirOption,
           assess_after: float = typer.Option(60.0, envvar="DUEBOT_EVIDENCE_ASSESS_AFTER",
                                              help="Seconds of quiet before a conversation's three elements "
                                                   "are assessed.")) -> None:
    """Run the single evidence writer: move records submitted through Redis into the log (`duebot serve` runs it)."""
    import signal

    import redis

    from duebot.evidence.inbox import EvidenceWriter

    settings = Settings.from_env()
    if not settings.redis_url:
        typer.echo("error: REDIS_URL is not set (duebot serve sets it for the writer)", err=True)
        raise typer.Exit(2)
    client = redis.Redis.from_url(settings.redis_url)
    with EvidenceLog.open(_dir(directory)) as log:
        loop = EvidenceWriter(client, log, assess_after=assess_after)
        signal.signal(signal.SIGTERM, lambda *_: loop.stopping.set())
        typer.echo(f"evidence writer: {_dir(directory)} ({log.size} records), stream {loop.stream}", err=True)
        try:
            loop.run()
        except KeyboardInterrupt:
            pass
        finally:
            loop.close()
            log.checkpoint()
