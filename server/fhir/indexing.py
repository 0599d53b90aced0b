"""Extract the search values of a resource into a store `Index`.

Values are read by shape (a Coding has `code`, an Identifier has `value`, a Period has
`start`/`end`...), which is how the R4 registry defines each parameter's type mapping.
"""

from __future__ import annotations

from typing import Any

from server.dose.units import UnitTable
from server.fhir import registry
from server.fhir.paths import values_at
from server.fhir.registry import SearchParam
from server.fhir.values import date_range, period_range
from server.store.port import (
    CompositeRow,
    DateRow,
    Index,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
)
from server.store.query import fold


class Indexer:
    def __init__(self, units: UnitTable) -> None:
        self._units = units

    def index(self, resource: dict[str, Any]) -> Index:
        rtype = resource["resourceType"]
        tokens: set[TokenRow] = set()
        strings: set[StringRow] = set()
        dates: set[DateRow] = set()
        quantities: set[QuantityRow] = set()
        references: set[ReferenceRow] = set()
        composites: set[CompositeRow] = set()
        for p in registry.params(rtype).values():
            if p.special is not None or p.via is not None:
                continue
            values = values_at(resource, p.path)
            if not values:
                continue
            if p.type in ("token", "uri"):
                tokens.update((p.name, s, c) for v in values for s, c in token_pairs(v))
                if p.name == "identifier" or p.path.endswith("identifier"):
                    tokens.update(
                        (f"{p.name}:of-type", s, c) for v in values for s, c in _of_type(v)
                    )
            elif p.type == "string":
                strings.update((p.name, fold(t), t) for v in values for t in _texts(v))
            elif p.type == "date":
                dates.update((p.name, *r) for v in values if (r := _date(v)) is not None)
            elif p.type == "quantity":
                quantities.update(
                    (p.name, *q) for v in values if (q := self._quantity(v)) is not None
                )
            elif p.type == "reference":
                references.update((p.name, t) for v in values if (t := _target(v, p)) is not None)
                tokens.update(
                    (f"{p.name}:identifier", s, c)
                    for v in values
                    if isinstance(v, dict) and "identifier" in v
                    for s, c in token_pairs(v["identifier"])
                )
            elif p.type == "composite":
                composites.update(self._composites(p, values))
        primary = registry.primary_date(rtype)
        primary_dates = [
            (lo, hi) for p, lo, hi in dates if primary is not None and p == primary.name
        ]
        return Index(
            tuple(tokens),
            tuple(strings),
            tuple(dates),
            tuple(quantities),
            tuple(references),
            tuple(composites),
            primary_dates[0] if len(primary_dates) == 1 else None,
        )

    def _quantity(self, v: Any) -> tuple[float, str, str, float, str] | None:
        if not isinstance(v, dict) or not isinstance(v.get("value"), int | float):
            return None
        value = float(v["value"])
        system = v.get("system", "")
        code = v.get("code") or v.get("unit") or ""
        if code in self._units and system in ("", "http://unitsofmeasure.org"):
            cvalue, ccode = self._units.canonical(value, code)
        else:
            cvalue, ccode = value, code
        return value, system, code, cvalue, ccode

    def _composites(self, p: SearchParam, values: list[Any]) -> set[CompositeRow]:
        token_path, quantity_path = p.components[0].path, p.components[1].path
        rows: set[CompositeRow] = set()
        for item in values:
            if not isinstance(item, dict):
                continue
            for q in values_at(item, quantity_path):
                quantity = self._quantity(q)
                if quantity is None:
                    continue
                for t in values_at(item, token_path):
                    rows.update((p.name, s, c, *quantity) for s, c in token_pairs(t))
        return rows


def token_pairs(v: Any) -> list[tuple[str, str]]:
    """(system, code) pairs of a token-like value; system "" when it has none.

    >>> token_pairs({"coding": [{"system": "http://loinc.org", "code": "73569-6"}]})
    [('http://loinc.org', '73569-6')]
    >>> token_pairs({"system": "urn:dicom:uid", "value": "urn:oid:1.2"}), token_pairs(True)
    ([('urn:dicom:uid', 'urn:oid:1.2')], [('', 'true')])
    """
    if isinstance(v, bool):
        return [("", "true" if v else "false")]
    if isinstance(v, str):
        return [("", v)]
    if not isinstance(v, dict):
        return []
    if "coding" in v:
        return [pair for coding in v["coding"] for pair in token_pairs(coding)]
    if "code" in v:  # Coding
        return [(v.get("system", ""), str(v["code"]))]
    if "value" in v and isinstance(v["value"], str):  # Identifier, ContactPoint
        return [(v.get("system", ""), v["value"])]
    return []


def _of_type(identifier: Any) -> list[tuple[str, str]]:
    """`identifier:of-type` rows: system = type system, code = "type code|value"."""
    if not isinstance(identifier, dict) or "type" not in identifier or "value" not in identifier:
        return []
    return [(s, f"{c}|{identifier['value']}") for s, c in token_pairs(identifier["type"])]


def _texts(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if not isinstance(v, dict):
        return []
    texts: list[str] = []
    for key in ("text", "family", "city", "district", "state", "postalCode", "country"):
        if isinstance(v.get(key), str):
            texts.append(v[key])
    for key in ("given", "prefix", "suffix", "line"):
        texts.extend(t for t in v.get(key, []) if isinstance(t, str))
    return texts


def _date(v: Any) -> tuple[float, float] | None:
    try:
        if isinstance(v, str):
            return date_range(v)
        if isinstance(v, dict) and ("start" in v or "end" in v):
            return period_range(v)
    except ValueError:
        return None
    return None


def _target(v: Any, p: SearchParam) -> str | None:
    """`Type/id` of a literal reference (absolute ones kept whole), if the param allows the type."""
    if isinstance(v, str):  # canonical
        return v
    key = reference_key(v)
    return key if key is not None and p.allows_target(key.split("/")[-2]) else None


def reference_key(v: Any) -> str | None:
    """`Type/id` of a literal Reference (relative, absolute or versioned), else None (contained
    `#id`, `urn:` placeholders, identifier-only references)."""
    if not isinstance(v, dict) or not isinstance(v.get("reference"), str):
        return None
    ref = v["reference"]
    if ref.startswith("#") or ref.startswith("urn:"):
        return None
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return f"{parts[-2]}/{parts[-1]}"


def references_of(resource: dict[str, Any], p: SearchParam) -> list[str]:
    """The `Type/id` values reference parameter `p` indexes for `resource`."""
    return [t for v in values_at(resource, p.path) if (t := _target(v, p)) is not None]
