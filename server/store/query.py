"""The store's search language: typed clauses that every adapter executes the same way.

`server.fhir.search` turns FHIR query strings into these; adapters turn them into SQL or
MongoDB filters. Values arrive already normalised (dates as epoch-second ranges, strings
folded, quantities with a canonical unit), so adapters only compare.

Clauses of a `Query` are ANDed; the values inside one clause are ORed, as in FHIR
(`code=a,b&date=ge2020` = (code a OR b) AND date >= 2020).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Literal

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
StringMode = Literal["start", "exact", "contains"]


def fold(text: str) -> str:
    """The form strings are indexed and searched in: lower case, accents removed.

    >>> fold("Müller-Lüdenscheidt"), fold("ZOË")
    ('muller-ludenscheidt', 'zoe')
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@dataclass(frozen=True)
class TokenValue:
    """`system|code`: system None matches any system, "" matches only codes without one."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class Range:
    """A search value as the closed interval [low, high] plus its comparison prefix.

    Dates: epoch seconds, high = the last microsecond of the given precision. Numbers and
    quantities: the implicit precision range for eq/ne/ap (1.5 covers [1.45, 1.55]), the value
    itself for the other prefixes; in canonical units when the unit is known.
    """

    prefix: Prefix
    low: float
    high: float


@dataclass(frozen=True)
class QuantityValue:
    range: Range
    system: str | None = None
    code: str | None = None
    # Set when the unit is known to the unit table: compare in canonical units.
    canonical_code: str | None = None


@dataclass(frozen=True)
class TokenClause:
    param: str
    values: tuple[TokenValue, ...]
    negate: bool = False  # the :not modifier


@dataclass(frozen=True)
class StringClause:
    param: str
    values: tuple[str, ...]  # as given; adapters compare fold(value) except in exact mode
    mode: StringMode = "start"


@dataclass(frozen=True)
class DateClause:
    param: str
    values: tuple[Range, ...]


@dataclass(frozen=True)
class QuantityClause:
    param: str
    values: tuple[QuantityValue, ...]


@dataclass(frozen=True)
class ReferenceClause:
    param: str
    targets: tuple[str, ...]  # "Type/id"


@dataclass(frozen=True)
class CompositeClause:
    """A token and a quantity that must hold on the same repetition (component-code-value-quantity)."""

    param: str
    values: tuple[tuple[TokenValue, QuantityValue], ...]


@dataclass(frozen=True)
class MissingClause:
    param: str
    kind: Literal["token", "string", "date", "quantity", "reference", "composite"]
    missing: bool


@dataclass(frozen=True)
class ChainClause:
    """`subject:Patient.identifier=x`: the reference param points at a `target_type` matching `inner`."""

    param: str
    target_type: str
    inner: Clause


@dataclass(frozen=True)
class IdClause:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class LastUpdatedClause:
    values: tuple[Range, ...]


Clause = (
    TokenClause
    | StringClause
    | DateClause
    | QuantityClause
    | ReferenceClause
    | CompositeClause
    | MissingClause
    | ChainClause
    | IdClause
    | LastUpdatedClause
)

SortKind = Literal["_id", "_lastUpdated", "token", "string", "date", "quantity", "reference"]


@dataclass(frozen=True)
class SortKey:
    param: str
    kind: SortKind
    descending: bool = False


@dataclass(frozen=True)
class Query:
    rtype: str
    clauses: tuple[Clause, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    offset: int = 0
    with_total: bool = True
    # Single-valued date params (e.g. Observation.date): their range clauses may be combined.
    single_valued: frozenset[str] = field(default_factory=frozenset)
    # The type's primary date param, stored beside each token (see Index.primary_date).
    primary_date: str | None = None


Bound = tuple[Literal["low", "high"], Literal[">", ">=", "<", "<="], float]


def range_conditions(search: Range) -> tuple[tuple[Bound, ...], bool]:
    """The FHIR prefix rule as bounds on a stored value's [low, high], and whether to negate.

    Both ranges are closed: a day is [00:00:00, 23:59:59.999999], a number 1.5 is [1.5, 1.5].
    Every adapter translates these bounds; none re-implements the prefix rules.

    >>> range_conditions(Range("eq", 10.0, 19.0))
    ((('low', '>=', 10.0), ('high', '<=', 19.0)), False)
    >>> range_conditions(Range("ge", 10.0, 19.0))
    ((('high', '>=', 10.0),), False)
    >>> range_conditions(Range("lt", 10.0, 19.0)), range_conditions(Range("sa", 10.0, 19.0))
    (((('low', '<', 10.0),), False), ((('low', '>', 19.0),), False))
    >>> range_conditions(Range("ne", 10.0, 19.0))[1]
    True
    """
    lo, hi = search.low, search.high
    rules: dict[str, tuple[Bound, ...]] = {
        "eq": (("low", ">=", lo), ("high", "<=", hi)),
        "ne": (("low", ">=", lo), ("high", "<=", hi)),
        "gt": (("high", ">", hi),),
        "ge": (("high", ">=", lo),),
        "lt": (("low", "<", lo),),
        "le": (("low", "<=", hi),),
        "sa": (("low", ">", hi),),
        "eb": (("high", "<", lo),),
    }
    if search.prefix == "ap":
        # within 10 % of the value either side, at least the value's own precision
        width = max(hi - lo, abs(lo) * 0.1)
        return (("high", ">=", lo - width), ("low", "<=", hi + width)), False
    return rules[search.prefix], search.prefix == "ne"
