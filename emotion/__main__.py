"""`python -m duebot.emotion serve|train|eval`: what `duebot serve` runs, independent of the CLI's registration."""

from duebot.emotion.cli import app

app(prog_name="duebot emotion")
