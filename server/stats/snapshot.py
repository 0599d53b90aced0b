"""The columnar copy of the dose facts on disk: one raw file per column, mapped read-only.

Every process that serves statistics maps the same files, so the operating system keeps one
copy in its page cache whatever the number of processes, a process holds in memory only the
pages its queries touch, and a restart maps the copy in milliseconds instead of reading a
million rows out of the store for seconds.

`<directory>/<version>/` is the copy as of fact write `<version>`: `<column>.bin` (the values,
native byte order), `labels.json` (the labels of the word columns' codes) and `meta.json`
(version, rows, each column's dtype, and the study of write `<version>`: a copy is used only
by a store that still has that write, so a restored or another store is never read through a
stale copy). A new copy is written under a temporary name, made durable, renamed into place
and the older ones removed, all under an exclusive lock that readers take too.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from server.files import write_durably


@dataclass(frozen=True)
class Snapshot:
    version: int
    anchor: str  # the study written at `version`
    columns: dict[str, npt.NDArray[Any]]
    labels: dict[str, list[str | None]]


class Snapshots:
    """The copies of one level's columns under a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def latest_version(self) -> int:
        """The version of the newest complete copy (0: none)."""
        try:
            return max((int(p.name) for p in self.directory.iterdir() if p.name.isdigit()),
                       default=0)  # fmt: skip
        except FileNotFoundError:
            return 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive between processes: one builds or maps while the others wait."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def load(self) -> Snapshot | None:
        """The newest copy, mapped (the caller holds the lock); None when there is none."""
        version = self.latest_version()
        if not version:
            return None
        folder = self.directory / str(version)
        meta = json.loads((folder / "meta.json").read_text())
        labels = json.loads((folder / "labels.json").read_text())
        columns = {name: _mapped(folder / f"{name}.bin", np.dtype(dtype), meta["rows"])
                   for name, dtype in meta["columns"].items()}  # fmt: skip
        return Snapshot(meta["version"], meta["anchor"], columns, labels)

    def writer(self, version: int, anchor: str) -> SnapshotWriter:
        return SnapshotWriter(self.directory, version, anchor)


class SnapshotWriter:
    """A new copy, appended batch by batch (bounded memory), then put in place."""

    def __init__(self, directory: Path, version: int, anchor: str) -> None:
        self._directory, self._version, self._anchor = directory, version, anchor
        self._folder = directory / f"{version}.{os.getpid()}.part"
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder.mkdir(parents=True)
        self._files: dict[str, IO[bytes]] = {}
        self._dtypes: dict[str, str] = {}
        self._rows = 0

    def append(self, columns: Mapping[str, npt.NDArray[Any]]) -> None:
        for name, values in columns.items():
            if name not in self._files:
                self._files[name] = open(self._folder / f"{name}.bin", "wb")  # noqa: SIM115
                self._dtypes[name] = values.dtype.str
            self._files[name].write(np.ascontiguousarray(values).tobytes())
        self._rows += len(next(iter(columns.values()))) if columns else 0

    def finish(self, labels: Mapping[str, list[str | None]]) -> None:
        """Durable, in place, the older copies removed."""
        for file in self._files.values():
            file.flush()
            os.fsync(file.fileno())
            file.close()
        write_durably(self._folder / "labels.json", json.dumps(labels).encode())
        meta = {"version": self._version, "anchor": self._anchor, "rows": self._rows,
                "columns": self._dtypes}  # fmt: skip
        write_durably(self._folder / "meta.json", json.dumps(meta).encode())
        final = self._directory / str(self._version)
        if final.exists():  # written by another process meanwhile: the same rows
            shutil.rmtree(self._folder)
        else:
            self._folder.rename(final)
        for old in self._directory.iterdir():
            if old != final and old.name != ".lock":
                shutil.rmtree(old, ignore_errors=True)  # mapped copies live on until unmapped


def _mapped(path: Path, dtype: np.dtype[Any], rows: int) -> npt.NDArray[Any]:
    if rows == 0:
        return np.empty(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(rows,))
