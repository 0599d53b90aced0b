"""The spool: received objects on disk, fsynced, until they are processed.

Sending Success to a modality is a promise that the object will not be lost, so the bytes, and
the directory entry that names them, are on disk before we answer. File names sort in arrival
order, so processing keeps the order in which objects came.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from server.files import write_durably

_SUFFIX = ".dcm"


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._sequence = itertools.count()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> Path:
        """Write `data` durably; raises OSError when the disk refuses (full, read-only, gone)."""
        with self._lock:  # unique among the listener processes writing here: the pid
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._sequence) % 1_000_000:06d}"
        target = self.folder / (name + _SUFFIX)
        write_durably(target, data)
        return target

    def discard_partial(self) -> None:
        """Remove writes a crash cut off: no Success was sent for them, so their senders retry.

        Only the listener may call this, before it listens: the files may be in the writing.
        """
        for part in self.folder.glob("*.part"):
            part.unlink()

    def pending(self) -> list[Path]:
        """What is waiting, oldest first; half-written `.part` files are not objects yet."""
        return pending_in(self.folder)

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)


def pending_in(folder: Path) -> list[Path]:
    """The objects waiting in a spool folder, oldest first (none when it was never made)."""
    return sorted(folder.glob("*" + _SUFFIX)) if folder.exists() else []


def arrived(path: Path) -> float:
    """When a spooled object arrived (epoch seconds): its name begins with the time in ns."""
    return int(path.name[:20]) / 1e9
