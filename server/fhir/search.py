"""The one FHIR search parser: query-string pairs -> an immutable `SearchRequest`.

REST (GET and POST `_search`) and GraphQL both call `parse`; each rule is shown below.

>>> r = parse("Observation", [("code", "http://loinc.org|73569-6"), ("date", "ge2024-01-01")])
>>> r.query.clauses[0]
TokenClause(param='code', values=(TokenValue(system='http://loinc.org', code='73569-6'),), negate=False)
>>> r.query.clauses[1].values[0].prefix
'ge'

Commas OR values, repeated parameters AND them, a backslash escapes:
>>> parse("Patient", [("identifier", "a\\\\,b,c")]).query.clauses[0].values
(TokenValue(system=None, code='a,b'), TokenValue(system=None, code='c'))

A bare id on a reference becomes Type/id for each type the parameter may point at:
>>> parse("Observation", [("device", "d1")]).query.clauses[0].targets
('Device/d1', 'DeviceMetric/d1')

Chains name the target type when the parameter allows several:
>>> c = parse("Observation", [("subject:Patient.identifier", "PAT1")]).query.clauses[0]
>>> c.param, c.target_type, c.inner.values
('subject', 'Patient', (TokenValue(system=None, code='PAT1'),))

Quantities in a known unit compare in the canonical unit of their quantity:
>>> q = parse("Observation", [("value-quantity", "gt1000|http://unitsofmeasure.org|mGy.cm2")])
>>> v = q.query.clauses[0].values[0]
>>> v.canonical_code, v.range.low
('Gy.m2', 0.0001)

Unknown parameters are an error unless the client asked for lenient handling:
>>> parse("Patient", [("shoe-size", "42")])
Traceback (most recent call last):
...
server.fhir.search.SearchError: unknown search parameter 'shoe-size' for Patient
>>> parse("Patient", [("shoe-size", "42")], strict=False).ignored
('shoe-size',)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from server.fhir import registry
from server.fhir.limits import MAX_CHAIN_LINKS, MAX_IDS, MAX_SEARCH_PARAMETERS, MAX_VALUES
from server.fhir.registry import SearchParam
from server.fhir.values import date_range, decimal_range
from server.mappings import unit_table
from server.store.query import (
    ChainClause,
    Clause,
    CompositeClause,
    DateClause,
    IdClause,
    LastUpdatedClause,
    MissingClause,
    Prefix,
    QuantityClause,
    QuantityValue,
    Query,
    Range,
    ReferenceClause,
    SortKey,
    StringClause,
    TokenClause,
    TokenValue,
)

UCUM = "http://unitsofmeasure.org"
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_RESULT_PARAMS = (
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
)
_MAX_INT = 2**31 - 1
SummaryMode = Literal["true", "false", "text", "data", "count"]


class SearchError(ValueError):
    """A search the client must fix (HTTP 400)."""


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None = None
    iterate: bool = False


@dataclass(frozen=True)
class SearchRequest:
    query: Query
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    summary: SummaryMode | None = None
    elements: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    # the parameters that were applied, for the Bundle's self link
    applied: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def parse(
    rtype: str,
    pairs: list[tuple[str, str]],
    *,
    strict: bool = True,
    default_count: int = 50,
    max_count: int = 1000,
    bounded: bool = True,
) -> SearchRequest:
    clauses: list[Clause] = []
    sort: tuple[SortKey, ...] = ()
    includes: list[Include] = []
    revincludes: list[Include] = []
    count, offset, with_total = default_count, 0, True
    summary: SummaryMode | None = None
    elements: tuple[str, ...] = ()
    ignored: list[str] = []
    applied: list[tuple[str, str]] = []
    if bounded:  # a client's search; Kerma's own batched lookups list many ids and references
        _bounded(pairs)
    for name, value in pairs:
        base = name.split(":", 1)[0]
        if base in _RESULT_PARAMS:
            applied.append((name, value))
            if base == "_count":
                count = min(non_negative(name, value), max_count)
            elif base == "_offset":
                offset = non_negative(name, value)
            elif base == "_sort":
                sort = _sort(rtype, value)
            elif base == "_include":
                includes.extend(_include(rtype, name, value, reverse=False))
            elif base == "_revinclude":
                revincludes.extend(_include(rtype, name, value, reverse=True))
            elif base == "_summary":
                summary = _choice(name, value, ("true", "false", "text", "data", "count"))  # type: ignore[assignment]
            elif base == "_elements":
                elements = tuple(e.strip() for e in value.split(",") if e.strip())
            elif base == "_total":
                with_total = _choice(name, value, ("none", "estimate", "accurate")) != "none"
            elif base == "_format":
                _choice(name, value, ("json", "application/json", "application/fhir+json", "xml",
                                      "application/fhir+xml", "application/xml", "text/xml"))  # fmt: skip
            continue
        try:
            clauses.append(_clause(rtype, name, value))
            applied.append((name, value))
        except UnknownParameter:
            if strict:
                raise SearchError(f"unknown search parameter {name!r} for {rtype}") from None
            ignored.append(name)
    if summary == "count":
        count, with_total = 0, True
    single = frozenset(p.name for p in registry.params(rtype).values() if p.single)
    primary = registry.primary_date(rtype)
    query = Query(
        rtype,
        tuple(clauses),
        sort,
        count,
        offset,
        with_total,
        single,
        primary.name if primary else None,
    )
    return SearchRequest(
        query,
        tuple(includes),
        tuple(revincludes),
        summary,
        elements,
        tuple(ignored),
        tuple(applied),
    )


class UnknownParameter(SearchError):
    pass


def _clause(rtype: str, name: str, value: str) -> Clause:
    head, _, chain = name.partition(".")
    pname, _, modifier = head.partition(":")
    p = registry.param(rtype, pname)
    if p is None:
        raise UnknownParameter(name)
    if modifier == "missing":
        if chain:
            raise SearchError(f"{name}: :missing cannot be chained")
        kind = "token" if p.type == "uri" else p.type
        if p.special is not None:
            raise SearchError(f"{name}: {pname} is never missing")
        missing = _choice(name, value, ("true", "false")) == "true"
        return (
            MissingClause(p.via, "composite", missing)
            if p.via
            else MissingClause(pname, kind, missing)
        )
    if chain:
        return _chain(rtype, p, modifier, chain, value)
    values = split_escaped(value, ",")
    if not values or any(v == "" for v in values):
        raise SearchError(f"{name}: empty value")
    if p.special == "id":
        _no_modifier(name, modifier)
        return IdClause(tuple(values))
    if p.special == "lastUpdated":
        _no_modifier(name, modifier)
        return LastUpdatedClause(tuple(_date_value(name, v) for v in values))
    parser = {
        "token": _token_clause,
        "uri": _token_clause,
        "string": _string_clause,
        "date": _date_clause,
        "quantity": _quantity_clause,
        "reference": _reference_clause,
        "composite": _composite_clause,
    }[p.type]
    return parser(p, modifier, name, values)


def _token_clause(p: SearchParam, modifier: str, name: str, values: list[str]) -> Clause:
    if modifier == "of-type":
        triples = [split_escaped(v, "|") for v in values]
        if any(len(t) != 3 for t in triples):
            raise SearchError(f"{name}: expected system|code|value")
        return TokenClause(
            f"{p.name}:of-type", tuple(TokenValue(s, f"{c}|{v}") for s, c, v in triples)
        )
    if modifier not in ("", "not"):
        raise SearchError(f"{name}: modifier :{modifier} is not supported on token parameters")
    return TokenClause(p.name, tuple(token_value(v) for v in values), negate=modifier == "not")


def token_value(text: str) -> TokenValue:
    """`system|code`, `|code` (no system), `system|` (any code), `code` (any system).

    >>> token_value("|x"), token_value("s|")
    (TokenValue(system='', code='x'), TokenValue(system='s', code=None))
    """
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        return TokenValue(None, parts[0])
    system, code = parts[0], "|".join(parts[1:])
    return TokenValue(system, code or None)


def _string_clause(p: SearchParam, modifier: str, name: str, values: list[str]) -> Clause:
    modes = {"": "start", "exact": "exact", "contains": "contains"}
    if modifier not in modes:
        raise SearchError(f"{name}: modifier :{modifier} is not supported on string parameters")
    return StringClause(p.name, tuple(values), modes[modifier])  # type: ignore[arg-type]


def _date_clause(p: SearchParam, modifier: str, name: str, values: list[str]) -> Clause:
    _no_modifier(name, modifier)
    return DateClause(p.name, tuple(_date_value(name, v) for v in values))


def _date_value(name: str, text: str) -> Range:
    prefix, rest = _prefix(text)
    try:
        low, high = date_range(rest)
    except ValueError as e:
        raise SearchError(f"{name}: {e}") from None
    return Range(prefix, low, high)


def _quantity_clause(p: SearchParam, modifier: str, name: str, values: list[str]) -> Clause:
    _no_modifier(name, modifier)
    quantities = tuple(quantity_value(name, v) for v in values)
    if p.via:  # e.g. component-value-quantity: the composite's rows, whatever their code
        return CompositeClause(p.via, tuple((TokenValue(None, None), q) for q in quantities))
    return QuantityClause(p.name, quantities)


def quantity_value(name: str, text: str) -> QuantityValue:
    """`[prefix]number[|system|code]`; eq/ne/ap use the number's implicit precision.

    >>> quantity_value("q", "5.4").range
    Range(prefix='eq', low=5.35, high=5.45)
    >>> quantity_value("q", "le5.4||mg").system is None
    True
    """
    parts = split_escaped(text, "|")
    if len(parts) not in (1, 3):
        raise SearchError(f"{name}: expected [prefix]number|system|code")
    prefix, number = _prefix(parts[0])
    try:
        value, low, high = decimal_range(number)
    except ValueError as e:
        raise SearchError(f"{name}: {e}") from None
    if prefix not in ("eq", "ne", "ap"):
        low = high = value
    system = (parts[1] or None) if len(parts) == 3 else None
    code = (parts[2] or None) if len(parts) == 3 else None
    units = unit_table()
    if code is not None and code in units and system in (None, UCUM):
        (low, unit_code), (high, _) = units.canonical(low, code), units.canonical(high, code)
        return QuantityValue(Range(prefix, low, high), system, code, unit_code)
    return QuantityValue(Range(prefix, low, high), system, code)


def _reference_clause(p: SearchParam, modifier: str, name: str, values: list[str]) -> Clause:
    if modifier == "identifier":
        return TokenClause(f"{p.name}:identifier", tuple(token_value(v) for v in values))
    if modifier and not p.allows_target(modifier):
        raise SearchError(f"{name}: {p.name} cannot point at {modifier}")
    targets: list[str] = []
    for v in values:
        targets.extend(_targets(p, modifier or None, v, name))
    return ReferenceClause(p.name, tuple(targets))


def _targets(p: SearchParam, type_modifier: str | None, value: str, name: str) -> list[str]:
    parts = value.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2:
        rtype, rid = parts[-2], parts[-1]
        if not p.allows_target(rtype) or (type_modifier and rtype != type_modifier):
            raise SearchError(f"{name}: {p.name} cannot point at {rtype}")
        return [f"{rtype}/{rid}"]
    if type_modifier:
        return [f"{type_modifier}/{value}"]
    concrete = [t for t in p.targets if t != "Resource"]
    if "Resource" in p.targets or not concrete:
        raise SearchError(f"{name}: give the target as Type/id")
    return [f"{t}/{value}" for t in concrete]


def _composite_clause(p: SearchParam, modifier: str, name: str, values: list[str]) -> Clause:
    _no_modifier(name, modifier)
    pairs: list[tuple[TokenValue, QuantityValue]] = []
    for v in values:
        halves = split_escaped(v, "$")
        if len(halves) != 2:
            raise SearchError(f"{name}: expected token$quantity")
        pairs.append((token_value(halves[0]), quantity_value(name, halves[1])))
    return CompositeClause(p.name, tuple(pairs))


def _bounded(pairs: list[tuple[str, str]]) -> None:
    """A search asks for at most so many parameters and values (server/fhir/limits.py);
    `_id` lists (one SQL IN, as GraphQL's batched lookups make them) have a bound of their own."""
    ids = [value.count(",") + 1 for name, value in pairs if name == "_id"]
    values = [value.count(",") + 1 for name, value in pairs if name != "_id"]
    if max(ids, default=0) > MAX_IDS:
        raise SearchError(f"_id: at most {MAX_IDS} ids in one search")
    if (
        len(pairs) > MAX_SEARCH_PARAMETERS
        or max(values, default=0) > MAX_VALUES
        or sum(values) > 10 * MAX_SEARCH_PARAMETERS
    ):
        raise SearchError(f"at most {MAX_SEARCH_PARAMETERS} search parameters, {MAX_VALUES} "
                          f"values of one, {10 * MAX_SEARCH_PARAMETERS} values in all")  # fmt: skip


def _chain(rtype: str, p: SearchParam, modifier: str, chain: str, value: str) -> Clause:
    name = f"{p.name}:{modifier}.{chain}" if modifier else f"{p.name}.{chain}"
    if name.count(".") > MAX_CHAIN_LINKS:
        raise SearchError(f"{name}: a chain has at most {MAX_CHAIN_LINKS} links")
    if p.type != "reference":
        raise SearchError(f"{name}: only reference parameters can be chained")
    inner_name = chain.split(".", 1)[0].split(":", 1)[0]
    if modifier:
        candidates = [modifier]
    else:
        candidates = [
            t for t in p.targets if t in registry.resource_types() and registry.param(t, inner_name)
        ]
    if len(candidates) != 1:
        raise SearchError(
            f"{name}: say which type the chain goes through, e.g. {p.name}:Patient.{chain}"
        )
    target = candidates[0]
    if not p.allows_target(target) or target not in registry.resource_types():
        raise SearchError(f"{name}: {p.name} cannot point at {target}")
    try:
        inner = _clause(target, chain, value)
    except UnknownParameter:
        raise SearchError(f"{name}: unknown search parameter {inner_name!r} for {target}") from None
    return ChainClause(p.name, target, inner)


def _sort(rtype: str, value: str) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for item in value.split(","):
        descending = item.startswith("-")
        pname = item.lstrip("-")
        p = registry.param(rtype, pname)
        if p is None or p.type == "composite" or p.via:
            raise SearchError(f"_sort: cannot sort {rtype} by {pname!r}")
        kind = (p.special and ("_id" if p.special == "id" else "_lastUpdated")) or p.type
        keys.append(SortKey(pname, "token" if kind == "uri" else kind, descending))  # type: ignore[arg-type]
    return tuple(keys)


def _include(rtype: str, name: str, value: str, reverse: bool) -> list[Include]:
    modifier = name.partition(":")[2]
    if modifier not in ("", "iterate", "recurse"):
        raise SearchError(f"{name}: unknown modifier")
    parts = value.split(":")
    if len(parts) not in (2, 3) or "*" in parts:
        raise SearchError(f"{name}: expected Type:param[:targetType]")
    source, pname = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    p = registry.param(source, pname) if source in registry.resource_types() else None
    if p is None or p.type != "reference":
        raise SearchError(f"{name}: {source}:{pname} is not a reference parameter")
    if not reverse and source != rtype and not modifier:
        raise SearchError(f"{name}: {source} is not the searched type {rtype}")
    if target is not None and not p.allows_target(target):
        raise SearchError(f"{name}: {source}:{pname} cannot point at {target}")
    return [Include(source, pname, target, iterate=bool(modifier))]


def _prefix(text: str) -> tuple[Prefix, str]:
    if text[:2] in _PREFIXES and len(text) > 2 and (text[2] in "0123456789-."):
        return text[:2], text[2:]  # type: ignore[return-value]
    return "eq", text


def _no_modifier(name: str, modifier: str) -> None:
    if modifier:
        raise SearchError(f"{name}: modifier :{modifier} is not supported here")


def non_negative(name: str, value: str) -> int:
    """A count or offset: 0 to 2**31 - 1 (larger ones can only be mistakes or probes).

    >>> non_negative("_count", "20")
    20
    >>> non_negative("_offset", "99999999999")
    Traceback (most recent call last):
    ...
    server.fhir.search.SearchError: _offset: expected an integer from 0 to 2147483647, got '99999999999'
    """
    if not (value.isascii() and value.isdigit()) or int(value) > _MAX_INT:
        raise SearchError(f"{name}: expected an integer from 0 to {_MAX_INT}, got {value!r}")
    return int(value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SearchError(f"{name}: expected one of {', '.join(allowed)}")
    return value


def split_escaped(text: str, separator: str) -> list[str]:
    r"""Split on `separator` unless a backslash escapes it; other escapes are kept for the
    next split (a token `a\|b` inside an OR list stays escaped until the `|` split).

    >>> split_escaped(r"a\,b,c", ",")
    ['a,b', 'c']
    >>> split_escaped(r"s\|x|c", ",")
    ['s\\|x|c']
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, "")
            current.append(escaped if escaped == separator else ch + escaped)
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def or_list(values: Iterable[str]) -> str:
    r"""One parameter value ORing `values`, their commas escaped (split_escaped's inverse).

    >>> split_escaped(or_list(["a,b", "c"]), ",")
    ['a,b', 'c']
    """
    return ",".join(v.replace(",", "\\,") for v in values)


def with_page(request: SearchRequest, offset: int) -> SearchRequest:
    return replace(request, query=replace(request.query, offset=offset))
