"""Writing files that must survive a crash or a power cut once we have said they are kept."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically and fsync both the file and its directory entry.

    Readers see the old file or the new one, never half of one; a `.part` file left by a
    crash was never acknowledged to anyone. Raises OSError when the disk refuses.
    """
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        part.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(part, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def chunks(path: Path, delete_after: bool = False) -> Iterator[bytes]:
    """A file in pieces of 64 KiB, for a streamed response; `delete_after`: a temporary file,
    removed once sent (or when the client went away)."""
    try:
        with path.open("rb") as data:
            while chunk := data.read(1 << 16):
                yield chunk
    finally:
        if delete_after:
            path.unlink(missing_ok=True)


def try_lock(file: IO[str]) -> bool:
    """Take the open file's exclusive lock unless another process holds it; the lock lasts
    while the file stays open (and ends with the process, however it ends)."""
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
