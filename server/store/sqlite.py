"""The embedded store: one SQLite file (stdlib sqlite3, WAL) under KERMA_DATA_DIR.

One connection per thread; writers take the database lock with BEGIN IMMEDIATE, so a
transaction Bundle commits all or nothing and readers never see half of it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lz4.block

from server.dose.facts import FACT_FIELDS, DoseFact, checked_fields
from server.store.port import Duplicate, Index, Stored, User, VersionConflict, Write
from server.store.query import Query
from server.store.sqlite_plan import CountCache, plan
from server.store.sqlite_schema import MIGRATIONS
from server.store.sqlite_search import DISTINCT_PK, NO_DATE, Compiler

_SELECT_STORED = (
    "SELECT r.pk, r.rtype, r.rid, r.version, r.last_updated, v.body, v.method "
    "FROM resource AS r JOIN resource_version AS v ON v.seq = r.current_seq"
)
# Beyond this many matches the page is read with LIMIT and the total counted separately.
_FETCH_ALL_LIMIT = 100_000
_PARAM_SQL = (
    "SELECT id FROM search_param WHERE rtype = ? AND name = ?",
    "INSERT OR IGNORE INTO search_param (rtype, name) VALUES (?, ?)",
)
_SYSTEM_SQL = (
    "SELECT id FROM code_system WHERE uri = ?",
    "INSERT OR IGNORE INTO code_system (uri) VALUES (?)",
)


class SqliteStore:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._param_ids: dict[tuple[str, ...], int] = {}
        self._system_ids: dict[tuple[str, ...], int] = {}
        self._counts = CountCache()
        self._migrate()

    # -- connections and schema -------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # used by its own thread only; closed by another one when that thread has ended
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30.0, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=1073741824")
            self._local.conn = conn
            with self._lock:
                self._close_orphans()
                self._connections.append((threading.current_thread(), conn))
        return conn

    def _close_orphans(self) -> None:
        """Connections of threads that ended (one per DICOM association or HTTP worker)."""
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                conn.close()
        self._connections = alive

    def _migrate(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, script in MIGRATIONS:
                if version > current:
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        return int(self._conn().execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            for _, conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- params -------------------------------------------------------------------------------

    def _param_id(self, rtype: str, name: str) -> int:
        """Id of a param for reading; -1 (matches nothing) if nothing was ever indexed for it."""
        return self._interned(self._conn(), self._param_ids, (rtype, name), _PARAM_SQL, write=False)

    def _param_id_for_write(self, conn: sqlite3.Connection, rtype: str, name: str) -> int:
        return self._interned(conn, self._param_ids, (rtype, name), _PARAM_SQL, write=True)

    def _system_id(self, uri: str) -> int:
        """Id of a code system URI for reading: 0 = no system, -1 = never stored."""
        return (
            self._interned(self._conn(), self._system_ids, (uri,), _SYSTEM_SQL, write=False)
            if uri
            else 0
        )

    def _system_id_for_write(self, conn: sqlite3.Connection, uri: str) -> int:
        return self._interned(conn, self._system_ids, (uri,), _SYSTEM_SQL, write=True) if uri else 0

    @staticmethod
    def _interned(
        conn: sqlite3.Connection,
        cache: dict[tuple[str, ...], int],
        key: tuple[str, ...],
        sql: tuple[str, str],
        write: bool,
    ) -> int:
        """The number standing for `key` in a dictionary table (search_param, code_system).

        A rollback can forget a number cached here; transaction() clears the caches then.
        """
        found = cache.get(key)
        if found is not None:
            return found
        select, insert = sql
        if write:
            conn.execute(insert, key)
        row = conn.execute(select, key).fetchone()
        if row is None:
            return -1
        cache[key] = int(row[0])
        return int(row[0])

    def _max_width(self, pid: int) -> float:
        row = (
            self._conn()
            .execute("SELECT max_width FROM search_param WHERE id = ?", (pid,))
            .fetchone()
        )
        return float(row[0]) if row else 0.0

    # -- reads ----------------------------------------------------------------------------------

    def read(self, rtype: str, rid: str) -> Stored | None:
        return _read(self._conn(), rtype, rid)

    def vread(self, rtype: str, rid: str, version: int) -> Stored | None:
        row = (
            self._conn()
            .execute(
                "SELECT r.rtype, r.rid, v.version, v.last_updated, v.body, v.method "
                "FROM resource AS r JOIN resource_version AS v ON v.pk = r.pk "
                "WHERE r.rtype = ? AND r.rid = ? AND v.version = ?",
                (rtype, rid, version),
            )
            .fetchone()
        )
        return _stored(row) if row else None

    def history(
        self, rtype: str | None, rid: str | None, since: float | None, count: int, offset: int
    ) -> tuple[list[Stored], int]:
        where: list[str] = []
        args: list[object] = []
        if rtype is not None:
            where.append("r.rtype = ?")
            args.append(rtype)
        if rid is not None:
            where.append("r.rid = ?")
            args.append(rid)
        if since is not None:
            where.append("v.last_updated >= ?")
            args.append(since)
        cond = " AND ".join(where) or "1"
        base = "FROM resource_version AS v JOIN resource AS r ON r.pk = v.pk WHERE " + cond
        conn = self._conn()
        total = conn.execute("SELECT count(*) " + base, args).fetchone()[0]
        rows = conn.execute(
            "SELECT r.rtype, r.rid, v.version, v.last_updated, v.body, v.method "
            + base
            + " ORDER BY v.seq DESC LIMIT ? OFFSET ?",
            [*args, count, offset],
        ).fetchall()
        return [_stored(row) for row in rows], total

    def search(self, query: Query) -> tuple[list[Stored], int | None]:
        return _search(self._conn(), self._compiler(), query, self._counts)

    def _compiler(self) -> Compiler:
        return Compiler(self._param_id, self._max_width, self._system_id)

    def included(self, sources: list[Stored], param: str, target_type: str | None) -> list[Stored]:
        if not sources:
            return []
        conn = self._conn()
        targets: set[str] = set()
        for rtype in {s.rtype for s in sources}:
            keys = [s.rid for s in sources if s.rtype == rtype]
            marks = ", ".join("?" * len(keys))
            rows = conn.execute(
                "SELECT x.target FROM ix_reference AS x JOIN resource AS r ON r.pk = x.pk "
                f"WHERE r.rtype = ? AND r.rid IN ({marks}) AND x.param = ?",
                [rtype, *keys, self._param_id(rtype, param)],
            ).fetchall()
            targets.update(t for (t,) in rows)
        if target_type is not None:
            targets = {t for t in targets if t.startswith(target_type + "/")}
        return _read_many(conn, sorted(targets))

    def revincluded(self, targets: list[Stored], rtype: str, param: str) -> list[Stored]:
        if not targets:
            return []
        keys = [f"{t.rtype}/{t.rid}" for t in targets]
        marks = ", ".join("?" * len(keys))
        rows = (
            self._conn()
            .execute(
                f"{_SELECT_STORED} WHERE r.pk IN (SELECT pk FROM ix_reference "
                f"WHERE param = ? AND target IN ({marks})) AND r.deleted = 0 ORDER BY r.pk",
                [self._param_id(rtype, param), *keys],
            )
            .fetchall()
        )
        return [_stored(row[1:]) for row in rows]

    # -- writes ----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            tx = SqliteTransaction(self, conn)
            yield tx
            tx.flush()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._param_ids.clear()
            self._system_ids.clear()
            raise

    # -- users -------------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        try:
            self._conn().execute(
                f"INSERT INTO app_user ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.name,
                    user.role,
                    user.token_hash,
                    user.created,
                    json.dumps(user.devices),
                    int(user.active),
                    user.jwks,
                    user.password_hash,
                ),
            )
        except sqlite3.IntegrityError:
            raise Duplicate(f"user {user.name!r} exists") from None

    def user_by_token(self, token_hash: str) -> User | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {_USER_COLUMNS} FROM app_user WHERE token_hash = ?",
                (token_hash,),
            )
            .fetchone()
        )
        return _user(row) if row else None

    def users(self) -> Iterator[User]:
        rows = (
            self._conn().execute(f"SELECT {_USER_COLUMNS} FROM app_user ORDER BY name").fetchall()
        )
        return iter([_user(row) for row in rows])

    def facts(self, study_uid: str | None = None) -> list[DoseFact]:
        where, args = ("WHERE study_uid = ?", [study_uid]) if study_uid else ("", [])
        rows = self._conn().execute(
            f"SELECT {', '.join(FACT_FIELDS)} FROM dose_fact {where} ORDER BY key", args
        )
        return [DoseFact(*row) for row in rows]

    def recent_studies(
        self, device: str, procedure: str, until: float, limit: int
    ) -> list[DoseFact]:
        rows = self._conn().execute(
            f"SELECT {', '.join(FACT_FIELDS)} FROM dose_fact WHERE level = 'study' AND device = ?"
            " AND procedure = ? AND date <= ? ORDER BY date DESC LIMIT ?",
            (device, procedure, until, limit),
        )
        return [DoseFact(*row) for row in rows]

    def fact_columns(
        self,
        level: str,
        columns: Sequence[str],
        since: float,
        until: float,
        studies: Sequence[str] | None = None,
    ) -> dict[str, list[Any]]:
        wanted = checked_fields(columns)
        select = f"SELECT {', '.join(wanted)} FROM dose_fact"
        everything = since == -math.inf and until == math.inf  # undated rows too
        dated = "1" if everything else "date >= ? AND date < ?"
        bounds = () if everything else (since, until)
        if studies is None:
            # NOT INDEXED: over a period of years the (level, modality, date) index only adds
            # a lookup per row (a full scan of a million rows is about twice as fast)
            sql = f"{select} NOT INDEXED WHERE level = ? AND {dated}"
            rows = self._conn().execute(sql, (level, *bounds)).fetchall()
        else:
            rows = []
            for start in range(0, len(studies), 500):
                chunk = list(studies[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                sql = f"{select} WHERE level = ? AND {dated} AND study_uid IN ({marks})"
                rows += self._conn().execute(sql, (level, *bounds, *chunk)).fetchall()
        found = list(zip(*rows, strict=True)) if rows else [() for _ in wanted]
        return {name: list(values) for name, values in zip(wanted, found, strict=True)}

    def fact_column_batches(
        self, level: str, columns: Sequence[str], size: int
    ) -> Iterator[dict[str, list[Any]]]:
        wanted = checked_fields(columns)
        sql = f"SELECT {', '.join(wanted)} FROM dose_fact NOT INDEXED WHERE level = ?"
        cursor = self._conn().execute(sql, (level,))  # one statement: one consistent read
        while rows := cursor.fetchmany(size):
            yield dict(zip(wanted, map(list, zip(*rows, strict=True)), strict=True))

    def fact_rows(
        self, level: str, columns: Sequence[str], since: float, until: float
    ) -> Iterator[tuple[Any, ...]]:
        wanted = checked_fields(columns)
        sql = (
            f"SELECT {', '.join(wanted)} FROM dose_fact WHERE level = ? AND date >= ? "
            "AND date < ? ORDER BY date, key"
        )
        cursor = self._conn().execute(sql, (level, since, until))
        while rows := cursor.fetchmany(1000):
            yield from rows

    def fact_version(self) -> int:
        row = self._conn().execute("SELECT max(seq) FROM fact_change").fetchone()
        return int(row[0] or 0)

    def fact_changes(self, after: int) -> tuple[int, list[str]]:
        rows = (
            self._conn()
            .execute("SELECT seq, study_uid FROM fact_change WHERE seq > ? ORDER BY seq", (after,))
            .fetchall()
        )
        latest = rows[-1][0] if rows else max(after, self.fact_version())
        return int(latest), list(dict.fromkeys(uid for _, uid in rows))

    def set_user_active(self, name: str, active: bool) -> bool:
        cur = self._conn().execute(
            "UPDATE app_user SET active = ? WHERE name = ?", (int(active), name)
        )
        return cur.rowcount == 1

    def user_by_name(self, name: str) -> User | None:
        row = (
            self._conn()
            .execute(f"SELECT {_USER_COLUMNS} FROM app_user WHERE name = ?", (name,))
            .fetchone()
        )
        return _user(row) if row else None

    def set_password(self, name: str, password_hash: str) -> bool:
        cur = self._conn().execute(
            "UPDATE app_user SET password_hash = ? WHERE name = ?", (password_hash, name)
        )
        return cur.rowcount == 1

    def set_token_hash(self, name: str, token_hash: str) -> bool:
        cur = self._conn().execute(
            "UPDATE app_user SET token_hash = ? WHERE name = ?", (token_hash, name)
        )
        return cur.rowcount == 1

    def failed_sign_ins(self, key: str, since: float) -> int:
        sql = "SELECT count(*) FROM failed_sign_in WHERE key = ? AND at >= ?"
        return int(self._conn().execute(sql, (key, since)).fetchone()[0])

    def record_failed_sign_in(self, key: str, at: float) -> None:
        conn = self._conn()
        conn.execute("DELETE FROM failed_sign_in WHERE at < ?", (at - _FAILURES_KEPT_S,))
        conn.execute("INSERT INTO failed_sign_in VALUES (?, ?)", (key, at))

    def clear_failed_sign_ins(self, key: str) -> None:
        self._conn().execute("DELETE FROM failed_sign_in WHERE key = ?", (key,))

    def first_use(self, key: str, expires: float) -> bool:
        conn = self._conn()
        conn.execute("DELETE FROM used_assertion WHERE expires < ?", (time.time(),))
        try:
            conn.execute("INSERT INTO used_assertion VALUES (?, ?)", (key, expires))
        except sqlite3.IntegrityError:
            return False
        return True


_INDEX_INSERTS = {
    "tokens": "INSERT OR IGNORE INTO ix_token (param, system, code, dlo, dhi, pk) VALUES (?, ?, ?, ?, ?, ?)",
    "strings": "INSERT OR IGNORE INTO ix_string (param, norm, exact, pk) VALUES (?, ?, ?, ?)",
    "dates": "INSERT OR IGNORE INTO ix_date (param, low, high, pk) VALUES (?, ?, ?, ?)",
    "quantities": "INSERT OR IGNORE INTO ix_quantity (param, value, system, code, cvalue, ccode, pk) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "references": "INSERT OR IGNORE INTO ix_reference (param, target, pk) VALUES (?, ?, ?)",
    "composites": "INSERT OR IGNORE INTO ix_composite "
    "(param, system, code, value, usystem, ucode, cvalue, ccode, pk) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
}
_INDEX_TABLES = ("ix_token", "ix_string", "ix_date", "ix_quantity", "ix_reference", "ix_composite")


class SqliteTransaction:
    """Writes and reads on the connection that holds the write lock.

    Index rows are collected and inserted with one executemany per table when the transaction
    reads or commits: a Bundle of 100 Observations costs 6 statements, not 600.
    """

    def __init__(self, store: SqliteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self._pending: dict[str, list[tuple[object, ...]]] = {kind: [] for kind in _INDEX_INSERTS}
        self._widths: dict[int, float] = {}

    def read(self, rtype: str, rid: str) -> Stored | None:
        return _read(self._conn, rtype, rid)

    def search(self, query: Query) -> tuple[list[Stored], int | None]:
        self.flush()
        return _search(self._conn, self._store._compiler(), query, self._store._counts)

    def write(self, write: Write) -> None:
        conn = self._conn
        row = conn.execute(
            "SELECT pk, version FROM resource WHERE rtype = ? AND rid = ?", (write.rtype, write.rid)
        ).fetchone()
        if row is None:
            if write.version != 1:
                raise VersionConflict(f"{write.rtype}/{write.rid} does not exist")
            pk = int(
                conn.execute(
                    "INSERT INTO resource (rtype, rid, version, last_updated, deleted, current_seq) "
                    "VALUES (?, ?, 0, ?, 0, 0)",
                    (write.rtype, write.rid, write.last_updated),
                ).lastrowid
                or 0
            )
        else:
            pk, version = row
            if version != write.version - 1:
                raise VersionConflict(f"{write.rtype}/{write.rid} is at version {version}")
            self.flush()
            for table in _INDEX_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE pk = ?", (pk,))
        seq = conn.execute(
            "INSERT INTO resource_version (pk, version, last_updated, method, body) VALUES (?, ?, ?, ?, ?)",
            (pk, write.version, write.last_updated, write.method, _compress(write.body)),
        ).lastrowid
        conn.execute(
            "UPDATE resource SET version = ?, last_updated = ?, deleted = ?, current_seq = ? WHERE pk = ?",
            (write.version, write.last_updated, int(write.body is None), seq, pk),
        )
        if write.index is not None:
            self._stage_index(pk, write.rtype, write.index)

    def _stage_index(self, pk: int, rtype: str, index: Index) -> None:
        def pid(name: str) -> int:
            return self._store._param_id_for_write(self._conn, rtype, name)

        def sid(uri: str) -> int:
            return self._store._system_id_for_write(self._conn, uri)

        pending = self._pending
        dlo, dhi = index.primary_date or (NO_DATE, NO_DATE)
        pending["tokens"].extend((pid(p), sid(s), c, dlo, dhi, pk) for p, s, c in index.tokens)
        pending["strings"].extend((pid(p), n, e, pk) for p, n, e in index.strings)
        pending["dates"].extend((pid(p), lo, hi, pk) for p, lo, hi in index.dates)
        pending["quantities"].extend(
            (pid(p), v, sid(s), c, cv, cc, pk) for p, v, s, c, cv, cc in index.quantities
        )
        pending["references"].extend((pid(p), t, pk) for p, t in index.references)
        pending["composites"].extend(
            (pid(p), sid(s), c, v, sid(us), uc, cv, cc, pk)
            for p, s, c, v, us, uc, cv, cc in index.composites
        )
        for p, lo, hi in index.dates:
            key = pid(p)
            self._widths[key] = max(self._widths.get(key, 0.0), hi - lo)

    def replace_facts(self, study_uid: str, facts: Sequence[DoseFact]) -> None:
        self._conn.execute("DELETE FROM dose_fact WHERE study_uid = ?", (study_uid,))
        self._conn.execute("INSERT INTO fact_change (study_uid) VALUES (?)", (study_uid,))
        marks = ", ".join("?" * len(FACT_FIELDS))
        self._conn.executemany(
            f"INSERT INTO dose_fact ({', '.join(FACT_FIELDS)}) VALUES ({marks})",
            [tuple(getattr(f, name) for name in FACT_FIELDS) for f in facts],
        )

    def flush(self) -> None:
        """Insert the staged index rows (before a read inside the transaction, and at commit)."""
        for kind, rows in self._pending.items():
            if rows:
                self._conn.executemany(_INDEX_INSERTS[kind], rows)
                rows.clear()
        if self._widths:
            self._conn.executemany(
                "UPDATE search_param SET max_width = ? WHERE id = ? AND max_width < ?",
                [(w, pid, w) for pid, w in self._widths.items()],
            )
            self._widths.clear()


def _search(
    conn: sqlite3.Connection, compiler: Compiler, query: Query, counts: CountCache
) -> tuple[list[Stored], int | None]:
    parts = [compiler.part(query.rtype, clause) for clause in query.clauses]
    chosen = plan(conn, compiler, query, parts, counts)
    probes = [p.probe for i, p in enumerate(parts) if i not in chosen.covers]
    probe_sql = " AND ".join(f"({sql})" for sql, _ in probes) or "1"
    probe_args = [a for _, args in probes for a in args]
    order_sql, order_args = compiler.order_by(query.rtype, query.sort)
    if chosen.driver is None:
        source = "resource AS r WHERE r.rtype = ? AND r.deleted = 0"
        source_args: list[object] = [query.rtype]
    else:
        # Index rows exist only for current resources of this type, so a driver needs the
        # resource table only to sort by id or lastUpdated.
        driver_sql, source_args = chosen.driver
        if not chosen.exact:
            driver_sql = f"SELECT DISTINCT {DISTINCT_PK} FROM ({driver_sql})"
        if any(k.kind in ("_id", "_lastUpdated") for k in query.sort):
            source = f"({driver_sql}) AS d JOIN resource AS r ON r.pk = d.pk WHERE 1"
        else:
            source = f"({driver_sql}) AS r WHERE 1"
    base = f"FROM {source} AND {probe_sql}"
    base_args = [*source_args, *probe_args]
    total: int | None = None
    if query.with_total:
        rows = conn.execute(
            f"SELECT r.pk {base} {order_sql} LIMIT ?",
            [*base_args, *order_args, _FETCH_ALL_LIMIT + 1],
        ).fetchall()
        if len(rows) <= _FETCH_ALL_LIMIT:
            pks = [pk for (pk,) in rows[query.offset : query.offset + query.count]]
            return _read_pks(conn, pks), len(rows)
        total = conn.execute(f"SELECT count(*) {base}", base_args).fetchone()[0]
    rows = conn.execute(
        f"SELECT r.pk {base} {order_sql} LIMIT ? OFFSET ?",
        [*base_args, *order_args, query.count, query.offset],
    ).fetchall()
    return _read_pks(conn, [pk for (pk,) in rows]), total


def _read(conn: sqlite3.Connection, rtype: str, rid: str) -> Stored | None:
    row = conn.execute(f"{_SELECT_STORED} WHERE r.rtype = ? AND r.rid = ?", (rtype, rid)).fetchone()
    return _stored(row[1:]) if row else None


def _read_pks(conn: sqlite3.Connection, pks: list[int]) -> list[Stored]:
    if not pks:
        return []
    marks = ", ".join("?" * len(pks))
    rows = conn.execute(f"{_SELECT_STORED} WHERE r.pk IN ({marks})", pks).fetchall()
    by_pk = {row[0]: _stored(row[1:]) for row in rows}
    return [by_pk[pk] for pk in pks]


def _read_many(conn: sqlite3.Connection, keys: list[str]) -> list[Stored]:
    found: list[Stored] = []
    for key in keys:
        rtype, _, rid = key.partition("/")
        stored = _read(conn, rtype, rid)
        if stored is not None and not stored.deleted:
            found.append(stored)
    return found


def _stored(row: tuple[Any, ...]) -> Stored:
    """(rtype, rid, version, last_updated, compressed body, method) -> Stored."""
    rtype, rid, version, last_updated, body, method = row
    data = decompress(body) if body is not None else None
    return Stored(rtype, rid, version, last_updated, data, method)


_USER_COLUMNS = "name, role, token_hash, created, devices, active, jwks, password_hash"
_FAILURES_KEPT_S = 86400.0


def _user(row: tuple[Any, ...]) -> User:
    name, role, token_hash, created, devices, active, jwks, password_hash = row
    return User(
        str(name),
        str(role),
        str(token_hash),
        float(created),
        tuple(json.loads(str(devices))),
        bool(active),
        str(jwks),
        password_hash=str(password_hash),
    )


_LZ4 = b"\x04"  # before an LZ4 block; a zlib stream (stores before 2026-12-06) begins 0x08-0x78


def _compress(body: bytes | None) -> bytes | None:
    """LZ4: a dose Observation (1.9 KB of JSON) in 2 µs to 0.4 of its size, read back in 0.7
    µs; zlib (level 1) took 22 µs to 0.3, and 6-18 µs to read, 14 % of a search's CPU for
    the 20 resources of a page."""
    return _LZ4 + lz4.block.compress(body) if body is not None else None


def decompress(body: bytes) -> bytes:
    """A stored body's JSON, LZ4 or zlib as it was written."""
    if body[:1] == _LZ4:
        return lz4.block.decompress(memoryview(body)[1:])  # type: ignore[no-any-return]
    return zlib.decompress(body)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
