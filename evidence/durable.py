"""Writing bytes so that they are on disk: one short loop the log, the witness and the gate's audit file share."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (signals, full pipes, large buffers): loop until every byte is out."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_all_synced(fd: int, data: bytes) -> None:
    write_all(fd, data)
    os.fsync(fd)
