"""`duebot models …` and `duebot voice …` (register in duebot/cli.py with app.add_typer)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer

models_app = typer.Typer(help="Speech models: packaged defaults, Vosk models with a checked sha256.",
                         no_args_is_help=True, add_completion=False)
app = typer.Typer(help="Voice calls: the SIP agent.", no_args_is_help=True, add_completion=False)


@models_app.command("list")
def list_models() -> None:
    """Show the models that ship in packages (no download needed)."""
    from duebot.voice.models import VOSK_MODELS, packaged_models

    for name, path in packaged_models().items():
        typer.echo(f"{name:<32} {path}")
    typer.echo("installable Vosk models: " + ", ".join(VOSK_MODELS))


@models_app.command("install-vosk")
def install_vosk_cmd(
    source: str = typer.Argument(..., help="A name from `duebot models list`, a URL or a local .zip"),
    sha256: str = typer.Option(..., help="Expected sha256 of the archive; a mismatch aborts the install."),
    dest: str = typer.Option("var/models/vosk", help="Where to unpack it."),
) -> None:
    """Download an official Vosk model, check its sha256, unpack it; then set DUEBOT_VOSK_MODEL to the path."""
    from duebot.voice.models import install_vosk

    path = install_vosk(source, sha256, Path(dest))
    typer.echo(f"installed: {path}\nexport DUEBOT_VOSK_MODEL={path.resolve()}")


@app.command()
def sip() -> None:
    """Register with DUEBOT_SIP_SERVER and answer calls with the voice pipeline until SIGTERM/Ctrl-C."""
    from duebot.channels.sip.channel import SipAgent, SipConfig
    from duebot.voice.runtime import VoiceRuntime

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        agent = SipAgent(SipConfig.from_settings(), VoiceRuntime.from_env(), loop)
        await asyncio.to_thread(agent.start)
        typer.echo(f"sip agent registered as {agent.config.username}@{agent.config.server}:{agent.config.port}")
        await stopping.wait()
        agent.stop()

    asyncio.run(main())


app.add_typer(models_app, name="models")

if __name__ == "__main__":
    app()
