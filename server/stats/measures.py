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

from server.dose.classify import Rules
from server.fhir.errors import FhirError
from server.fhir.service import body_of
from server.fhir.values import instant
from server.site.identity import About
from server.stats.service import GROUPS, UNITS, LevelComparison, Query, Row, Statistics

STATISTICS_URL = "https://kerma.example.org/fhir/StructureDefinition/dose-statistics"
_UCUM = {"mGy": "mGy", "mGy·cm": "mGy.cm", "Gy·m²": "Gy.m2", "Gy": "Gy", "s": "s", "kV": "kV",
         "mA": "mA", "mAs": "mA.s", "mm": "mm", "kg": "kg", "": "1"}  # fmt: skip
_LEVELS = {"study": "examination (study totals)", "event": "irradiation event"}
_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"


def ucum(quantity: str) -> str:
    """The UCUM code of a dose-fact field's unit (dap_gy_m2: Gy.m2)."""
    return _UCUM[UNITS[quantity]]


def measure_id(quantity: str, level: str) -> str:
    return f"dose-{quantity.replace('_', '-')}-{level}"


def definition(rid: str) -> tuple[str, str]:
    """(quantity, level) of a Measure id; 404 for ids that are no statistic of Kerma's."""
    for quantity in UNITS:
        for level in _LEVELS:
            if measure_id(quantity, level) == rid:
                return quantity, level
    raise FhirError.of(404, "not-found", f"Measure/{rid} is not a statistic Kerma computes")


def canonical(base: str, quantity: str, level: str) -> str:
    """The Measure's canonical URL: where Kerma (at FHIR base `base`) serves it."""
    return f"{base.rstrip('/')}/Measure/{measure_id(quantity, level)}"


def measure(quantity: str, level: str, base: str) -> dict[str, Any]:
    rid = measure_id(quantity, level)
    unit = UNITS[quantity] or "no unit"
    return {
        "resourceType": "Measure",
        "id": rid,
        "url": canonical(base, quantity, level),
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


def report(
    query: Query,
    overall: list[Row],
    rows: list[Row],
    now: datetime,
    stats: Statistics,
    about: About,
) -> dict[str, Any]:
    """The MeasureReport of a query: the whole population, and a stratum per group (standard
    procedures coded); reported by the site when it is set up."""
    unit = UNITS[query.quantity]
    group: dict[str, Any] = {
        "population": [_count(sum(r.summary.n for r in overall))],
        "stratifier": [
            {
                "code": [{"text": name} for name in query.group_by],
                "stratum": [_stratum(query, row, unit, stats.ctx.rules) for row in rows],
            }
        ],
    }
    if len(overall) == 1:
        group["measureScore"] = _quantity(overall[0].summary.median, unit)
    made: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": canonical(about.base, query.quantity, query.level),
        "date": instant(now.timestamp()),
        "period": {"start": instant(query.since), "end": instant(query.until)},
        "group": [group],
    }
    if about.site.organization is not None:
        made["reporter"] = {"reference": about.site.reference, "display": about.site.name}
    return made


def collection(
    tables: list[tuple[Query, list[Row]]], stats: Statistics, now: datetime, about: About
) -> dict[str, Any]:
    """A collection Bundle of the MeasureReports of some statistics (a survey, a report's
    tables), readable without Kerma: the reporting Organization and every Device a stratum
    names are in it, each under its full URL, so "Device/<id>" resolves within the Bundle."""
    base = about.base.rstrip("/")
    reports, devices = [], dict[str, None]()
    for query, rows in tables:
        overall = stats.dose(replace(query, group_by=("modality",)))
        reports.append(report(query, overall, rows, now, stats, about))
        devices.update(dict.fromkeys(str(r.group["device"]) for r in rows if r.group.get("device")))
    entries = [{"fullUrl": f"{base}/{about.site.reference}", "resource": about.site.organization}
               ] if about.site.organization is not None else []  # fmt: skip
    for ref in devices:
        stored = stats.store.read(*ref.split("/", 1))
        if stored is not None and not stored.deleted:
            entries.append({"fullUrl": f"{base}/{ref}", "resource": _described(body_of(stored))})
    entries += [{"resource": made} for made in reports]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": instant(now.timestamp()),
            "entry": entries}  # fmt: skip


def _described(device: dict[str, Any]) -> dict[str, Any]:
    """A Device as a survey names it: its kind, make and model (Kerma's id tells rooms apart),
    without what would tie the survey to the source objects: Device UID, serial number, AE
    title, station, institution and department names (DICOM PS3.15 Annex E removes them)."""
    kept = ("resourceType", "id", "status", "type", "manufacturer", "modelNumber")
    described = {k: device[k] for k in kept if k in device}
    names = [n for n in device.get("deviceName", []) if n.get("type") != "user-friendly-name"]
    return described | ({"deviceName": names} if names else {})


def _stratum(query: Query, row: Row, unit: str, rules: Rules) -> dict[str, Any]:
    s = row.summary
    details = [
        {"url": name, "valueQuantity": _quantity(getattr(s, name), unit)}
        for name in ("mean", "sd", "min", "p25", "p75", "p95", "max")
    ] + [_level(level, unit) for level in row.levels]
    stratum: dict[str, Any] = {"extension": [{"url": STATISTICS_URL, "extension": details}]}
    # R4 invariant mrp-2: a stratum has a value (one stratifier) or components (several)
    if len(query.group_by) == 1:
        stratum["value"] = _value(query.group_by[0], row.group, rules)
    else:
        stratum["component"] = [
            {"code": {"text": name}, "value": _value(name, row.group, rules)}
            for name in query.group_by
        ]
    return stratum | {"population": [_count(s.n)], "measureScore": _quantity(s.median, unit)}


def _value(name: str, group: dict[str, str | None], rules: Rules) -> dict[str, Any]:
    """A stratum's value: a standard procedure with its code (RadLex Playbook, or Kerma's
    local code), anything else as text ("Device/<id>": the Device is in the Bundle)."""
    text = str(group.get(name))
    procedure = rules.named(text) if name == "procedure" else None
    if procedure is None:
        return {"text": text}
    return {"coding": [{"system": procedure.system, "code": procedure.code,
                        "display": procedure.name}], "text": text}  # fmt: skip


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
        "value": float(f"{value:.9g}"),  # significant digits: a DAP in Gy·m² is 1e-6 or less
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
