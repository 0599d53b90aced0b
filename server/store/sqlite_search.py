"""Compile `query.Query` clauses to SQLite, and choose which clause drives the search.

Each clause becomes a *probe* (an EXISTS test on one resource, `alias.pk`) and, when it can
be answered from an index range, a *driver* (a SELECT of matching pks). The search runs the
most selective driver and probes the rest, so `code=X&date=ge..&date=lt..` reads the few
thousand index entries of one month instead of every Observation with that code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.store.query import (
    Bound,
    ChainClause,
    Clause,
    CompositeClause,
    DateClause,
    IdClause,
    LastUpdatedClause,
    MissingClause,
    QuantityClause,
    QuantityValue,
    Range,
    ReferenceClause,
    SortKey,
    StringClause,
    TokenClause,
    TokenValue,
    fold,
    range_conditions,
)

Sql = tuple[str, list[object]]
ParamId = Callable[[str, str], int]  # (rtype, param name) -> id, -1 when never indexed
MaxWidth = Callable[[int], float]  # param id -> widest [low, high] stored for it
SystemId = Callable[[str], int]  # code system URI -> id, 0 for "", -1 when never stored

_TABLE = {
    "token": "ix_token",
    "string": "ix_string",
    "date": "ix_date",
    "quantity": "ix_quantity",
    "reference": "ix_reference",
    "composite": "ix_composite",
}
_MAX_CHAR = "\U0010ffff"
# "+pk": a DISTINCT on the bare column lets SQLite deliver pks in order by scanning the whole
# by-pk index (every row of every param: 160 ms at 2.5 M token rows) instead of the param's range
DISTINCT_PK = "+pk AS pk"
NO_DATE = -1e300  # dlo/dhi of a token row whose resource has no primary date


@dataclass(frozen=True)
class Part:
    """One clause as SQL: a probe on `alias.pk`, and a driver SELECT of matching pks if an index
    can answer it. `exact`: the driver yields each pk once. `cacheable`: its row count depends on
    the data only, not on a range the client chose, so the planner may remember it."""

    probe: Sql
    driver: Sql | None
    exact: bool = False
    cacheable: bool = False


class Compiler:
    """Turns clauses about `rtype` into SQL; `alias` names the resource row being probed."""

    def __init__(self, param_id: ParamId, max_width: MaxWidth, system_id: SystemId) -> None:
        self._system_id = system_id
        self._param_id = param_id
        self._max_width = max_width

    def part(self, rtype: str, clause: Clause, alias: str = "r") -> Part:
        method = getattr(self, "_" + type(clause).__name__)
        return method(rtype, clause, alias)  # type: ignore[no-any-return]

    def matching(self, rtype: str, clauses: tuple[Clause, ...], alias: str) -> Sql:
        """SELECT of the pks of current `rtype` resources matching all clauses (no planning)."""
        parts = [self.part(rtype, c, alias) for c in clauses]
        drivers = [p.driver for p in parts if p.driver is not None]
        where, args = _and([p.probe for p in parts])
        if drivers:
            dsql, dargs = drivers[0]
            sql = (
                f"SELECT {alias}.pk FROM ({dsql}) AS d_{alias} CROSS JOIN resource AS {alias} "
                f"WHERE {alias}.pk = d_{alias}.pk AND {alias}.deleted = 0 AND {where}"
            )
            return sql, [*dargs, *args]
        sql = (
            f"SELECT {alias}.pk FROM resource AS {alias} "
            f"WHERE {alias}.rtype = ? AND {alias}.deleted = 0 AND {where}"
        )
        return sql, [rtype, *args]

    def combined_dates(self, rtype: str, clauses: list[DateClause]) -> Sql | None:
        """One driver for several one-value date clauses on a single-valued param.

        A single value must satisfy all of them, so their bounds can share one range scan.
        """
        if len(clauses) < 2 or any(len(c.values) != 1 for c in clauses):
            return None
        bounds: list[Bound] = []
        for clause in clauses:
            conds, negate = range_conditions(clause.values[0])
            if negate:
                return None
            bounds.extend(conds)
        pid = self._param_id(rtype, clauses[0].param)
        sql, args = self._range_sql(bounds, pid, {"low": "low", "high": "high"})
        return f"SELECT pk FROM ix_date WHERE param = ? AND {sql}", [pid, *args]

    def token_with_dates(
        self, rtype: str, token: TokenClause, dates: list[DateClause]
    ) -> Sql | None:
        """One driver for a token clause and the date clauses on the type's primary date.

        Token rows carry the primary date ([dlo, dhi]), so "this code in this month" is one
        range scan of the token index, with no probe per row.
        """
        if token.negate or not dates or any(len(d.values) != 1 for d in dates):
            return None
        bounds: list[Bound] = []
        for clause in dates:
            conds, negate = range_conditions(clause.values[0])
            if negate:
                return None
            bounds.extend(conds)
        bounds.append(("low", ">", NO_DATE))  # rows of resources without the date never match
        date_pid = self._param_id(rtype, dates[0].param)
        date_sql, date_args = self._range_sql(bounds, date_pid, {"low": "dlo", "high": "dhi"})
        pid = self._param_id(rtype, token.param)
        selects = []
        for value in token.values:
            tsql, targs = self._token_sql(value, "code", "system")
            selects.append(
                (
                    f"SELECT pk FROM ix_token WHERE param = ? AND {tsql} AND {date_sql}",
                    [pid, *targs, *date_args],
                )
            )
        return _union_selects(selects)[0]

    def order_by(self, rtype: str, sort: tuple[SortKey, ...], alias: str = "r") -> Sql:
        terms: list[str] = []
        args: list[object] = []
        for key in sort:
            direction = " DESC" if key.descending else ""
            if key.kind == "_id":
                terms.append(f"{alias}.rid{direction}")
                continue
            if key.kind == "_lastUpdated":
                terms.append(f"{alias}.last_updated{direction}")
                continue
            column = {
                "token": "code",
                "string": "norm",
                "date": "high" if key.descending else "low",
                "quantity": "value",
                "reference": "target",
            }[key.kind]
            agg = "MAX" if key.descending else "MIN"
            terms.append(
                f"(SELECT {agg}({column}) FROM {_TABLE[key.kind]} "
                f"WHERE pk = {alias}.pk AND param = ?){direction}"
            )
            args.append(self._param_id(rtype, key.param))
        terms.append(f"{alias}.pk")
        return "ORDER BY " + ", ".join(terms), args

    # -- one method per clause type -------------------------------------------------------

    def _TokenClause(self, rtype: str, c: TokenClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        conds = [self._token_sql(v, "code", "system") for v in c.values]
        probe = _exists("ix_token", alias, pid, _or(conds), negate=c.negate)
        if c.negate:
            return Part(probe, None)
        one_key = (
            len(c.values) == 1 and c.values[0].code is not None and c.values[0].system is not None
        )
        driver, exact = _union("ix_token", pid, conds)
        return Part(probe, driver, exact or one_key, cacheable=True)

    def _StringClause(self, rtype: str, c: StringClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        conds = [_string_sql(v, c.mode) for v in c.values]
        return Part(
            _exists("ix_string", alias, pid, _or(conds)),
            *_union("ix_string", pid, conds),
            cacheable=True,
        )

    def _DateClause(self, rtype: str, c: DateClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        columns = {"low": "low", "high": "high"}
        return _ranged("ix_date", alias, pid, [self._value_sql(v, pid, columns) for v in c.values])

    def _QuantityClause(self, rtype: str, c: QuantityClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        conds = [self._quantity_sql(v, pid, "code", "system") for v in c.values]
        return _ranged("ix_quantity", alias, pid, conds)

    def _ReferenceClause(self, rtype: str, c: ReferenceClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        marks = ", ".join("?" * len(c.targets))
        cond: Sql = (f"target IN ({marks})", list(c.targets))
        driver, _ = _union("ix_reference", pid, [cond])
        probe = _exists("ix_reference", alias, pid, cond)
        return Part(probe, driver, exact=len(c.targets) == 1, cacheable=True)

    def _CompositeClause(self, rtype: str, c: CompositeClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        conds: list[Sql] = []
        drivable = True
        for token, quantity in c.values:
            tsql, targs = self._token_sql(token, "code", "system")
            (qsql, qargs), ok = self._quantity_sql(quantity, pid, "ucode", "usystem")
            drivable = drivable and ok
            conds.append((f"({tsql}) AND ({qsql})", [*targs, *qargs]))
        probe = _exists("ix_composite", alias, pid, _or(conds))
        if not drivable:
            return Part(probe, None)
        return Part(probe, *_union("ix_composite", pid, conds))

    def _MissingClause(self, rtype: str, c: MissingClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        table = _TABLE[c.kind]
        probe = _exists(table, alias, pid, ("1", []), negate=c.missing)
        if c.missing:
            return Part(probe, None)
        driver: Sql = (f"SELECT DISTINCT {DISTINCT_PK} FROM {table} WHERE param = ?", [pid])
        return Part(probe, driver, exact=True, cacheable=True)

    def _ChainClause(self, rtype: str, c: ChainClause, alias: str) -> Part:
        pid = self._param_id(rtype, c.param)
        inner_alias = alias + "c"
        inner_sql, inner_args = self.matching(c.target_type, (c.inner,), inner_alias)
        targets = f"SELECT t.rtype || '/' || t.rid FROM resource AS t WHERE t.pk IN ({inner_sql})"
        cond: Sql = (f"target IN ({targets})", inner_args)
        driver, _ = _union("ix_reference", pid, [cond])
        return Part(_exists("ix_reference", alias, pid, cond), driver, cacheable=True)

    def _IdClause(self, rtype: str, c: IdClause, alias: str) -> Part:
        marks = ", ".join("?" * len(c.ids))
        # "+deleted": without it SQLite scans every resource of the type through the (rtype,
        # deleted) index instead of seeking each id in (rtype, rid): 35 ms, not 2, for 500 ids
        driver: Sql = (
            f"SELECT pk FROM resource WHERE rtype = ? AND +deleted = 0 AND rid IN ({marks})",
            [rtype, *c.ids],
        )
        probe: Sql = (f"{alias}.pk IN ({driver[0]})", driver[1])
        return Part(probe, driver, exact=True, cacheable=True)

    def _LastUpdatedClause(self, rtype: str, c: LastUpdatedClause, alias: str) -> Part:
        drivers: list[Sql] = []
        for value in c.values:
            conds, negate = range_conditions(value)
            sql, args = _bounds_sql(conds, {"low": "last_updated", "high": "last_updated"}, negate)
            drivers.append(
                (
                    f"SELECT pk FROM resource WHERE rtype = ? AND deleted = 0 AND {sql}",
                    [rtype, *args],
                )
            )
        driver, _ = _union_selects(drivers)  # rows of the resource table: each pk once
        probe: Sql = (f"{alias}.pk IN ({driver[0]})", driver[1])
        return Part(probe, driver, exact=True)

    # -- value conditions -------------------------------------------------------------------

    def _value_sql(self, value: Range, pid: int, columns: dict[str, str]) -> tuple[Sql, bool]:
        """Bounds for one range value; the flag says whether an index range can drive it."""
        conds, negate = range_conditions(value)
        if negate:
            return _bounds_sql(conds, columns, negate=True), False
        return self._range_sql(conds, pid, columns), True

    def _range_sql(
        self, conds: tuple[Bound, ...] | list[Bound], pid: int, columns: dict[str, str]
    ) -> Sql:
        """Bounds plus the `low` bounds they imply, so the (param, low) index can be used.

        A stored value is never wider than the widest one kept for its param (w), so
        high >= x implies low >= x - w, and high <= x implies low <= x.
        """
        width = self._max_width(pid)
        implied: list[Bound] = []
        for side, op, x in conds:
            if side == "high" and op in (">", ">="):
                implied.append(("low", ">=", x - width))
            elif side == "high":
                implied.append(("low", op, x))
        return _bounds_sql(_tightest((*conds, *implied)), columns, negate=False)

    def _token_sql(self, v: TokenValue, code_col: str, system_col: str) -> Sql:
        parts: list[Sql] = []
        if v.code is not None:
            parts.append((f"{code_col} = ?", [v.code]))
        if v.system is not None:
            parts.append((f"{system_col} = ?", [self._system_id(v.system)]))
        return _and(parts) if parts else ("1", [])

    def _quantity_sql(
        self, q: QuantityValue, pid: int, code_col: str, system_col: str
    ) -> tuple[Sql, bool]:
        if q.canonical_code is not None:
            prefix: Sql = ("ccode = ?", [q.canonical_code])
            column = "cvalue"
        else:
            parts: list[Sql] = [(f"{code_col} = ?", [q.code])] if q.code is not None else []
            if q.system is not None:
                parts.append((f"{system_col} = ?", [self._system_id(q.system)]))
            prefix = _and(parts) if parts else ("1", [])
            column = "value"
        (vsql, vargs), drivable = self._value_sql(q.range, pid, {"low": column, "high": column})
        return (f"{prefix[0]} AND {vsql}", [*prefix[1], *vargs]), drivable


def _ranged(table: str, alias: str, pid: int, conds: list[tuple[Sql, bool]]) -> Part:
    """A part from range conditions; it can drive only if every condition is an index range."""
    sqls = [sql for sql, _ in conds]
    probe = _exists(table, alias, pid, _or(sqls))
    if not all(ok for _, ok in conds):
        return Part(probe, None)
    return Part(probe, *_union(table, pid, sqls))


def _string_sql(value: str, mode: str) -> Sql:
    folded = fold(value)
    if mode == "exact":
        return "norm = ? AND exact = ?", [folded, value]
    if mode == "contains":
        return "instr(norm, ?) > 0", [folded]
    return "norm >= ? AND norm < ?", [folded, folded + _MAX_CHAR]


def _tightest(bounds: tuple[Bound, ...]) -> tuple[Bound, ...]:
    """One lower and one upper bound per side: SQLite uses only one of several for the index.

    >>> _tightest((("low", ">", -1e300), ("low", ">=", 5.0), ("low", "<", 9.0), ("high", ">=", 6.0)))
    (('low', '>=', 5.0), ('low', '<', 9.0), ('high', '>=', 6.0))
    """
    best: dict[tuple[str, bool], Bound] = {}
    for bound in bounds:
        side, op, x = bound
        lower = op in (">", ">=")
        current = best.get((side, lower))
        if current is None:
            best[(side, lower)] = bound
            continue
        _, cur_op, cur_x = current
        tighter = x > cur_x if lower else x < cur_x
        strict_tie = x == cur_x and op in (">", "<") and cur_op in (">=", "<=")
        if tighter or strict_tie:
            best[(side, lower)] = bound
    return tuple(best.values())


def _bounds_sql(conds: tuple[Bound, ...], columns: dict[str, str], negate: bool) -> Sql:
    sql = " AND ".join(f"{columns[side]} {op} ?" for side, op, _ in conds)
    args: list[object] = [x for _, _, x in conds]
    return (f"NOT ({sql})" if negate else f"({sql})"), args


def _exists(table: str, alias: str, pid: int, cond: Sql, negate: bool = False) -> Sql:
    sql = f"EXISTS (SELECT 1 FROM {table} WHERE pk = {alias}.pk AND param = ? AND ({cond[0]}))"
    return ("NOT " + sql if negate else sql), [pid, *cond[1]]


def _union(table: str, pid: int, conds: list[Sql]) -> tuple[Sql, bool]:
    return _union_selects(
        [(f"SELECT pk FROM {table} WHERE param = ? AND {sql}", [pid, *args]) for sql, args in conds]
    )


def _union_selects(selects: list[Sql]) -> tuple[Sql, bool]:
    """The selects joined by UNION, and whether the result is free of duplicates (UNION dedupes)."""
    sql = " UNION ".join(s for s, _ in selects), [a for _, args in selects for a in args]
    return sql, len(selects) > 1


def _or(conds: list[Sql]) -> Sql:
    return "(" + " OR ".join(f"({s})" for s, _ in conds) + ")", [
        a for _, args in conds for a in args
    ]


def _and(conds: list[Sql]) -> Sql:
    if not conds:
        return "1", []
    return " AND ".join(f"({s})" for s, _ in conds), [a for _, args in conds for a in args]
