"""Every HL7 message received, kept on disk before it is answered.

A message is written (fsynced: SQLite synchronous=FULL) before it is applied, so one that got
an ACK survives a crash, and one that was kept but not applied is applied at the next start.
The key is the sender (MSH-3, MSH-4), the message type (MSH-9) and the control id (MSH-10): the
same message sent again gets the ACK it got the first time and is not applied twice. A message
without a control id is keyed by a hash of its bytes.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
  key TEXT PRIMARY KEY,
  received REAL NOT NULL,
  event TEXT NOT NULL,
  raw BLOB NOT NULL,
  state TEXT NOT NULL,          -- received | AA | AE | AR
  ack BLOB,
  reason TEXT,
  attempts INTEGER NOT NULL DEFAULT 0  -- times Kerma began to apply it
);
CREATE INDEX IF NOT EXISTS message_state ON message(state) WHERE state = 'received';
"""
_COLUMNS = "key, raw, state, ack, reason, attempts"


@dataclass(frozen=True)
class Kept:
    key: str
    raw: bytes
    state: str
    ack: bytes | None
    reason: str | None
    attempts: int = 0


class Inbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(message)")}
        if "attempts" not in columns:  # an inbox of a Kerma before the column existed
            self._conn.execute("ALTER TABLE message ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        self._lock = threading.Lock()

    @staticmethod
    def key(sender: str, event: str, control_id: str, raw: bytes) -> str:
        if control_id:
            return f"{sender}|{event}|{control_id}"
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def keep(self, key: str, event: str, raw: bytes) -> Kept | None:
        """Write the message durably; the earlier one when this key was kept before."""
        with self._lock:
            self._conn.execute("PRAGMA synchronous=FULL")
            try:
                self._conn.execute(
                    "INSERT INTO message (key, received, event, raw, state, attempts) "
                    "VALUES (?, ?, ?, ?, 'received', 1)",
                    (key, time.time(), event, raw),
                )
            except sqlite3.IntegrityError:
                return self._get(key)
            return None

    def finish(self, key: str, state: str, ack: bytes, reason: str) -> None:
        """Record the outcome. Not fsynced: lost in a crash, the message is applied again
        at the next start, which changes nothing."""
        with self._lock:
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "UPDATE message SET state = ?, ack = ?, reason = ? WHERE key = ?",
                (state, ack, reason, key),
            )

    def unfinished(self) -> list[Kept]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM message WHERE state = 'received' ORDER BY received"
            ).fetchall()
        return [Kept(*row) for row in rows]

    def attempt(self, key: str) -> None:
        """Count one more try to apply the message, on disk before the try: a message that
        stops the process while it is applied is not tried for ever."""
        with self._lock:
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("UPDATE message SET attempts = attempts + 1 WHERE key = ?", (key,))

    def get(self, key: str) -> Kept | None:
        with self._lock:
            return self._get(key)

    def _get(self, key: str) -> Kept | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM message WHERE key = ?", (key,)).fetchone()
        return Kept(*row) if row else None

    def close(self) -> None:
        self._conn.close()
