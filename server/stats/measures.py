"""Statistics as FHIR: a Measure per statistic definition (a dose quantity at a level) and
MeasureReports from `$evaluate-measure`, stratified as asked, for EHRs, registries and BI
tools that speak FHIR. The numbers are those of GET /stats/dose (the same function).

A stratum carries n as its population count, the median as measureScore, and the rest (mean,
sd, min, percentiles, max, the DRLs compared) in the extension
https://kerma.example.org/fhir/StructureDefinition/dose-statistics.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from server.fhir.errors import FhirError
from server.fhir.values import instant
from server.stats.service import GROUPS, UNITS, LevelComparison, Query, Row, Statistics

BASE = "https://kerma.example.org/fhir/Measure/"
STATISTICS_URL = "https://kerma.example.org/fhir/StructureDefinition/dose-statistics"
_UCUM = {"mGy": "mGy", "mGy·cm": "mGy.cm", "Gy·m²": "Gy.m2", "Gy": "Gy", "s": "s", "kV": "kV",
         "mA": "mA", "mAs": "mA.s", "mm": "mm", "kg": "kg", "": "1"}  # fmt: skip
_LEVELS = {"study": "examination (study totals)", "event": "irradiation event"}
_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"


def measure_id(quantity: str, level: str) -> str:
    return f"dose-{quantity.replace('_', '-')}-{level}"


def definition(rid: str) -> tuple[str, str]:
    """(quantity, level) of a Measure id; 404 for ids that are no statistic of Kerma's."""
    for quantity in UNITS:
        for level in _LEVELS:
            if measure_id(quantity, level) == rid:
                return quantity, level
    raise FhirError.of(404, "not-found", f"Measure/{rid} is not a statistic Kerma computes")


def measure(quantity: str, level: str) -> dict[str, Any]:
    rid = measure_id(quantity, level)
    unit = UNITS[quantity] or "no unit"
    return {
        "resourceType": "Measure",
        "id": rid,
        "url": BASE + rid,
        "name": rid.replace("-", "_"),
        "title": f"{quantity} per {_LEVELS[level]}",
        "status": "active",
        "description": f"The distribution of {quantity} ({unit}) per {_LEVELS[level]} in the dose "
        "facts of a period: n, mean, standard deviation, min, 25th/50th/75th/95th percentiles and "
        "max, stratified as asked (group=...), with the DRLs that apply compared to the median",
        "scoring": {"coding": [{"system": _SCORING, "code": "continuous-variable"}]},
        "group": [
            {
                "population": [
                    _population(
                        "measure-population", f"dose facts of level {level} with {quantity}"
                    ),
                    _population("measure-observation", f"{quantity} in {unit}"),
                ],
                "stratifier": [
                    {
                        "code": {"text": name},
                        "criteria": {"language": "text/plain", "expression": name},
                    }
                    for name in GROUPS
                ],
            }
        ],
    }


def report(query: Query, overall: list[Row], rows: list[Row], now: datetime) -> dict[str, Any]:
    """The MeasureReport of a query: the whole population, and a stratum per group."""
    unit = UNITS[query.quantity]
    group: dict[str, Any] = {
        "population": [_count(sum(r.summary.n for r in overall))],
        "stratifier": [
            {
                "code": [{"text": name} for name in query.group_by],
                "stratum": [_stratum(query, row, unit) for row in rows],
            }
        ],
    }
    if len(overall) == 1:
        group["measureScore"] = _quantity(overall[0].summary.median, unit)
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": BASE + measure_id(query.quantity, query.level),
        "date": instant(now.timestamp()),
        "period": {"start": instant(query.since), "end": instant(query.until)},
        "group": [group],
    }


def collection(
    tables: list[tuple[Query, list[Row]]], stats: Statistics, now: datetime
) -> dict[str, Any]:
    """A collection Bundle of the MeasureReports of some statistics (a survey, a report's
    tables): each with its whole population and its strata."""
    entries = []
    for query, rows in tables:
        overall = stats.dose(replace(query, group_by=("modality",)))
        entries.append({"resource": report(query, overall, rows, now)})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": instant(now.timestamp()),
            "entry": entries}  # fmt: skip


def _stratum(query: Query, row: Row, unit: str) -> dict[str, Any]:
    s = row.summary
    details = [
        {"url": name, "valueQuantity": _quantity(getattr(s, name), unit)}
        for name in ("mean", "sd", "min", "p25", "p75", "p95", "max")
    ] + [_level(level, unit) for level in row.levels]
    stratum: dict[str, Any] = {"extension": [{"url": STATISTICS_URL, "extension": details}]}
    # R4 invariant mrp-2: a stratum has a value (one stratifier) or components (several)
    if len(query.group_by) == 1:
        stratum["value"] = {"text": str(row.group.get(query.group_by[0]))}
    else:
        stratum["component"] = [
            {"code": {"text": name}, "value": {"text": str(row.group.get(name))}}
            for name in query.group_by
        ]
    return stratum | {"population": [_count(s.n)], "measureScore": _quantity(s.median, unit)}


def _level(level: LevelComparison, unit: str) -> dict[str, Any]:
    return {
        "url": "drl",
        "extension": [
            {"url": "set", "valueString": level.set},
            {"url": "examination", "valueString": level.examination},
            {"url": "level", "valueQuantity": _quantity(level.level, unit)},
            {"url": "ratio", "valueDecimal": level.reported_ratio},
        ],
    }


def _quantity(value: float, unit: str) -> dict[str, Any]:
    code = _UCUM[unit]
    return {
        "value": round(value, 6),
        "unit": unit or "1",
        "system": "http://unitsofmeasure.org",
        "code": code,
    }


def _count(n: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": _POPULATION, "code": "measure-population"}]}, "count": n}


def _population(code: str, text: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": _POPULATION, "code": code}]},
        "criteria": {"language": "text/plain", "expression": text},
    }
