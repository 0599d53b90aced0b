"""How the SQLite store keeps resource bodies: LZ4 from 2026-12-06, zlib before; a store
written before is read as it is, without a migration."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import orjson

from server.store.port import Write
from server.store.sqlite import SqliteStore

BODY = orjson.dumps({"resourceType": "Patient", "id": "p1", "name": [{"family": "Test" * 50}]})


def _write(store: SqliteStore, rid: str, version: int = 1) -> None:
    with store.transaction() as tx:
        tx.write(Write("Patient", rid, version, 1.0, "POST" if version == 1 else "PUT", BODY, None))


def _raw(path: Path, rid: str) -> bytes:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT v.body FROM resource r JOIN resource_version v "
                           "ON v.seq = r.current_seq WHERE r.rid = ?", (rid,)).fetchone()  # fmt: skip
    return bytes(row[0])


def test_a_body_is_written_in_lz4_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "kerma.sqlite3"
    store = SqliteStore(path)
    _write(store, "p1")
    raw = _raw(path, "p1")
    assert raw[:1] == b"\x04" and len(raw) < len(BODY) / 3
    found = store.read("Patient", "p1")
    assert found is not None and found.body == BODY
    store.close()


def test_a_body_written_with_zlib_before_is_read(tmp_path: Path) -> None:
    path = tmp_path / "kerma.sqlite3"
    store = SqliteStore(path)
    _write(store, "old")
    with sqlite3.connect(path) as conn:  # as a store written before 2026-12-06 holds it
        conn.execute("UPDATE resource_version SET body = ?", (zlib.compress(BODY, 1),))
    found = store.read("Patient", "old")
    assert found is not None and found.body == BODY
    _write(store, "old", version=2)  # its next version: LZ4; the first still read
    assert _raw(path, "old")[:1] == b"\x04"
    first = store.vread("Patient", "old", 1)
    assert first is not None and first.body == BODY
    store.close()
