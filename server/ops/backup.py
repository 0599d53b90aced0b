"""Backups of a running Kerma: `kerma backup DEST` and `kerma restore SOURCE`.

SQLite databases (the store, the HL7 inbox) are copied with SQLite's online backup API in one
step: a consistent snapshot while kerma serve goes on writing (WAL: the copy reads, writers do
not wait). The other files of KERMA_DATA_DIR (the spool, quarantine, keys, MPPS steps, PACS
pull state, exports) are copied first, so an object that moves from the spool into the store
during the backup is in one of the two (or both: storing it again is a no-op), never in neither.
A manifest lists every file with its size and SHA-256; restore checks them before it writes.
MongoDB is backed up with its own tools (mongodump), as docs/operations.md shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypedDict

from server.config import Settings
from server.files import try_lock, write_durably

MANIFEST = "kerma-backup.json"
SERVE_LOCK = "kerma-serve.lock"  # held by a running kerma serve
# the running processes' counters (meaningless elsewhere); the statistics' copy of the facts
# (a cache, made again from the store)
_LEFT_OUT = ("metrics", "facts")
_TRANSIENT = (".part", "-wal", "-shm", "-journal", ".lock")


class BackupError(Exception):
    """Why a backup or restore could not be made, and what to do."""


@dataclass(frozen=True)
class Summary:
    files: int
    databases: int
    bytes: int
    seconds: float


def backup(settings: Settings, dest: Path) -> Summary:
    """Copy KERMA_DATA_DIR into the new or empty folder `dest`, with a manifest."""
    started = time.monotonic()
    source = settings.data_dir
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; back up into a new folder")
    if dest.resolve().is_relative_to(source.resolve()):
        raise BackupError(f"{dest} is inside KERMA_DATA_DIR; back up to another folder")
    dest.mkdir(parents=True, exist_ok=True)
    plain, databases = _contents(source)
    copied = [p for p in plain if _copy_file(source / p, dest / p)]
    for relative in databases:
        _copy_database(source / relative, dest / relative)
    entries = {str(p): _describe(dest / p) for p in [*copied, *databases]}
    manifest = {"kerma": version("kerma"), "made": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "store": "sqlite" if settings.store in ("", "sqlite") else "mongodb",
                "files": entries}  # fmt: skip
    write_durably(dest / MANIFEST, json.dumps(manifest, indent=1).encode())
    size = sum(e["bytes"] for e in entries.values())
    return Summary(len(copied), len(databases), size, time.monotonic() - started)


def restore(source: Path, settings: Settings, replace: bool = False) -> Summary:
    """Put a backup back into KERMA_DATA_DIR (kerma serve stopped); with `replace`, what was
    there is moved aside into KERMA_DATA_DIR/replaced-<time>/ first."""
    started = time.monotonic()
    entries = _checked(source)
    target = settings.data_dir
    target.mkdir(parents=True, exist_ok=True)
    with open(target / SERVE_LOCK, "a") as lock:
        if not try_lock(lock):
            raise BackupError(f"kerma serve is running on {target}; stop it, then restore")
        present = [p for p in target.iterdir() if p.name != SERVE_LOCK]
        if present and not replace:
            raise BackupError(f"{target} holds data; restore with --replace to move it aside")
        aside = target / time.strftime("replaced-%Y%m%d-%H%M%S")
        for path in present:
            aside.mkdir(exist_ok=True)
            path.rename(aside / path.name)
        for relative in entries:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target / relative)
            os.chmod(target / relative, 0o600)
    size = sum(e["bytes"] for e in entries.values())
    databases = sum(1 for p in entries if p.endswith(".sqlite3"))
    return Summary(len(entries) - databases, databases, size, time.monotonic() - started)


def _contents(folder: Path) -> tuple[list[Path], list[Path]]:
    """(plain files, SQLite databases) under `folder`, relative to it, transient ones left out."""
    plain: list[Path] = []
    databases: list[Path] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or relative.parts[0] in _LEFT_OUT or path.name.endswith(_TRANSIENT):
            continue
        if relative.parts[0].startswith("replaced-"):
            continue  # what an earlier restore moved aside
        (databases if path.suffix == ".sqlite3" else plain).append(relative)
    return plain, databases


def _copy_file(source: Path, dest: Path) -> bool:
    """False when the file went away meanwhile (a spooled object stored, say)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy2(source, dest)
    except FileNotFoundError:
        return False
    os.chmod(dest, 0o600)
    return True


def _copy_database(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    live = sqlite3.connect(source, timeout=30)
    copy = sqlite3.connect(dest)
    try:
        live.backup(copy)  # all pages in one step: one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        problems = copy.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        copy.close()
        live.close()
    if problems != "ok":
        raise BackupError(f"the copy of {source.name} fails SQLite's integrity check: {problems}")
    os.chmod(dest, 0o600)


class Entry(TypedDict):
    bytes: int
    sha256: str


def _describe(path: Path) -> Entry:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _checked(source: Path) -> dict[str, Entry]:
    """The manifest's files, each present with its size and checksum, or BackupError."""
    try:
        entries: dict[str, Entry] = json.loads((source / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError) as e:
        raise BackupError(f"{source} is not a Kerma backup ({MANIFEST}: {e})") from None
    for relative, expected in entries.items():
        path = source / relative
        if ".." in Path(relative).parts or not path.is_file():
            raise BackupError(f"the backup lacks {relative}; it is incomplete")
        if _describe(path) != expected:
            raise BackupError(f"{relative} differs from its checksum; the backup is damaged")
    return entries
