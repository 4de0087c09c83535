"""Helper for test_crash: append under load and print each index once append() has returned."""

from __future__ import annotations

import sys
import threading

from duebot.evidence.log import EvidenceLog


def main(directory: str, tag: str) -> None:
    log = EvidenceLog.open(directory, checkpoint_interval=0.2)
    out = threading.Lock()

    def worker(t: int) -> None:
        i = 0
        while True:
            label = f"{tag}-{t}-{i}"
            payloads = {"text": label.encode() * 3} if i % 3 == 0 else None
            r = log.append("annotation", {"author": f"w{t}", "label": label}, payloads,
                           conversation_id=f"{tag}-{t}")
            with out:
                sys.stdout.write(f"{r.index} {label}\n")
                sys.stdout.flush()
            i += 1

    for t in range(8):
        threading.Thread(target=worker, args=(t,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
