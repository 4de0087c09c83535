"""One full transcript per settlement path, through the real stack (Rasa, actions, Redis, evidence writer).

    .venv/bin/python evaluation/transcripts.py > transcripts.txt

Starts the stack on free ports in a scratch data directory with the test accounts (tests/fixtures/accounts.csv),
plays each path as a chat conversation through Rasa's REST webhook, prints the transcripts, and stops everything.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from duebot.accounts.importer import import_csv  # noqa: E402
from duebot.accounts.store import AccountStore  # noqa: E402
from duebot.processes import free_port  # noqa: E402
from duebot.secrets import account_signature  # noqa: E402
from duebot.serve import Stack  # noqa: E402
from duebot.settings import export, load_settings  # noqa: E402

PATHS = {
    "pay now": ("A-1", ["hello", "4472", "I'd like to pay it all now, send me the link"]),
    "promise to pay": ("A-1", ["hi", "4472", "I can pay on Friday", "yes that's right"]),
    "installment plan": ("A-1", ["hello", "4472", "can I pay in installments?", "yes, that works"]),
    "partial payment": ("A-1", ["hello", "4472", "I can only pay part of it today", "fifty dollars", "the 15th",
                                "yes"]),
    "dispute": ("A-5", ["hello", "4472", "I don't recognise these charges",
                        "I never called the 168 information line, my nephew did"]),
    "hardship": ("A-1", ["hello", "4472", "I lost my job last month", "yes please", "yes"]),
    "wrong number (voice)": ("A-2", ["hello", "you have the wrong number"]),
    "opt-out": ("A-4", ["hello", "stop calling me"]),
}



def main() -> None:
    base = load_settings()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        (data_dir / "models").symlink_to(base.models_dir)
        export({"REDIS_URL": None, "DUEBOT_DATA_DIR": str(data_dir)})
        import_csv(ROOT / "tests" / "fixtures" / "accounts.csv", AccountStore(f"sqlite:///{data_dir}/duebot.sqlite3"))
        settings = base.changed(DUEBOT_DATA_DIR=data_dir, REDIS_URL=None, DUEBOT_RASA_PORT=free_port(),
                           DUEBOT_ACTIONS_PORT=free_port(), DUEBOT_WEB_PORT=free_port(),
                                DUEBOT_REDIS_PORT=free_port())
        stack = Stack(settings, say=lambda line: print(f"# {line}", file=sys.stderr))
        try:
            stack.start_all()
            with httpx.Client(base_url=settings.rasa_url, timeout=30) as client:
                for n, (path, (account, lines)) in enumerate(PATHS.items()):
                    channel = "voice" if "voice" in path else "chat"
                    print(f"\n=== {path} — account {account}, {channel} ===")
                    for text in lines:
                        print(f"subscriber: {text}")
                        sender = f"transcript-{n}"  # the account signed as a channel signs it
                        metadata = {"account_id": account, "channel": channel,
                                    "account_sig": account_signature(sender, account, settings)}
                        reply = client.post("/webhooks/rest/webhook", json={
                            "sender": sender, "message": text, "metadata": metadata}).json()
                        for message in reply:
                            if "text" in message:
                                print(f"duebot:     {message['text']}")
        finally:
            stack.stop_all()


if __name__ == "__main__":
    main()
