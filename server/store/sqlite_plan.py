"""Choose the clause that drives a SQLite search: the one whose index range is smallest.

Estimates are cheap first: every candidate is counted up to 1,000 rows, which settles the
common case (`patient=X`). When all are larger, equality drivers (a code, a reference) are
counted once and remembered for a few minutes, since how many Observations carry a given code
changes slowly; range drivers (a month of dates) are then counted only up to the best count
so far. `code=<event>&date=<month>` thus reads one month of the date index, not every event.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from server.store.query import DateClause, Query, TokenClause
from server.store.sqlite_search import Compiler, Part, Sql

_QUICK_CAP = 1_000
_RANGE_CAP = 1_000_000
_CACHE_SECONDS = 300.0
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Plan:
    driver: Sql | None  # None: scan the resource table of the type
    exact: bool  # the driver yields each pk once
    covers: frozenset[int]  # clauses (by position) the driver already guarantees


@dataclass(frozen=True)
class _Candidate:
    driver: Sql
    exact: bool
    cacheable: bool
    covers: frozenset[int]


class CountCache:
    """Row counts of equality drivers, for a few minutes (thread-safe, bounded)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, tuple[object, ...]], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, tuple[object, ...]]) -> int | None:
        with self._lock:
            hit = self._counts.get(key)
        if hit is None or time.monotonic() - hit[0] > _CACHE_SECONDS:
            return None
        return hit[1]

    def put(self, key: tuple[str, tuple[object, ...]], count: int) -> None:
        with self._lock:
            if len(self._counts) >= _CACHE_SIZE:
                self._counts.clear()
            self._counts[key] = (time.monotonic(), count)


def plan(
    conn: object, compiler: Compiler, query: Query, parts: list[Part], cache: CountCache
) -> Plan:
    candidates = _candidates(compiler, query, parts)
    if not candidates:
        return Plan(None, False, frozenset())
    if len(candidates) == 1:
        return _plan_of(candidates[0])
    quick = [(_count(conn, c.driver, _QUICK_CAP), c) for c in candidates]
    small = [(n, c) for n, c in quick if n < _QUICK_CAP]
    if small:
        return _plan_of(min(small, key=lambda nc: nc[0])[1])
    best: tuple[int, _Candidate] | None = None
    for c in (c for c in candidates if c.cacheable):
        key = (c.driver[0], tuple(c.driver[1]))
        n = cache.get(key)
        if n is None:
            n = _count(conn, c.driver, None)
            cache.put(key, n)
        if best is None or n < best[0]:
            best = (n, c)
    for c in (c for c in candidates if not c.cacheable):
        cap = best[0] if best else _RANGE_CAP
        n = _count(conn, c.driver, cap)
        if best is None or n < best[0]:
            best = (n, c)
    assert best is not None
    return _plan_of(best[1])


def _candidates(compiler: Compiler, query: Query, parts: list[Part]) -> list[_Candidate]:
    candidates = [
        _Candidate(p.driver, p.exact, p.cacheable, frozenset({i}))
        for i, p in enumerate(parts)
        if p.driver is not None
    ]
    # Date clauses on a single-valued param combine into one range: it matches a subset of each
    # clause alone, so it replaces them as a candidate and covers all of them.
    by_param: dict[str, list[int]] = {}
    for i, clause in enumerate(query.clauses):
        if isinstance(clause, DateClause) and clause.param in query.single_valued:
            by_param.setdefault(clause.param, []).append(i)
    for positions in by_param.values():
        clauses = [query.clauses[i] for i in positions]
        combined = compiler.combined_dates(query.rtype, clauses)  # type: ignore[arg-type]
        if combined is not None:
            covered = frozenset(positions)
            candidates = [c for c in candidates if not c.covers <= covered]
            candidates.append(_Candidate(combined, True, False, covered))
    # A token with the primary date's clauses is one range of the token index (rows carry
    # that date): a subset of both, so it replaces them.
    primary = by_param.get(query.primary_date or "", [])
    for i, clause in enumerate(query.clauses):
        if not primary or not isinstance(clause, TokenClause):
            continue
        dated = compiler.token_with_dates(query.rtype, clause, [query.clauses[j] for j in primary])  # type: ignore[misc]
        if dated is not None:
            covered = frozenset({i, *primary})
            candidates = [c for c in candidates if not c.covers <= covered]
            exact = len(clause.values) > 1 or all(
                v.system is not None and v.code is not None for v in clause.values
            )
            candidates.append(_Candidate(dated, exact, False, covered))
    return candidates


def _plan_of(c: _Candidate) -> Plan:
    return Plan(c.driver, c.exact, c.covers)


def _count(conn: object, driver: Sql, cap: int | None) -> int:
    sql, args = driver
    limited = f"{sql} LIMIT {cap}" if cap is not None else sql
    return int(conn.execute(f"SELECT count(*) FROM ({limited})", args).fetchone()[0])  # type: ignore[attr-defined]
