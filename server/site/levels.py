"""Dose levels (DRLs, optimisation targets, local alert levels) as FHIR ObservationDefinitions,
so that EHRs and BI tools read them where they read everything else.

The level is a qualified interval with a high bound (`category: reference` for a DRL,
`critical` for an alert level), the examination in `appliesTo`, the clinical indication in
`condition`, the age band in `age`; what FHIR has no element for (authority, year, weight
band, whether it is in force and was read in the authority's own text) is in the extension
https://kerma.example.org/fhir/StructureDefinition/dose-level.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.dose.classify import Procedure
from server.dose.drl import DoseLevel
from server.dose.units import UnitTable
from server.fhir.errors import FhirError, Issue
from server.fhir.mapping import DCM, UCUM
from server.mappings import national_levels, unit_table

LEVEL_URL = "https://kerma.example.org/fhir/StructureDefinition/dose-level"
KIND_SYSTEM = "https://kerma.example.org/fhir/CodeSystem/dose-level-kind"
LEVEL_ID_SYSTEM = "urn:kerma:dose-level"
_INTERVAL = {"DRL": "reference", "VGD": "reference", "alert": "critical"}
_KINDS = ("DRL", "VGD", "alert")


def observation_definition(
    level: DoseLevel, procedures: Iterable[Procedure] = ()
) -> dict[str, Any]:
    """`procedures`: the standard procedures the level applies to (appliesTo's codings)."""
    applies_to: dict[str, Any] = {"text": level.examination}
    codings = [{"system": p.system, "code": p.code, "display": p.name} for p in procedures]
    if codings:
        applies_to["coding"] = codings
    interval: dict[str, Any] = {
        "category": _INTERVAL.get(level.kind, "reference"),
        "range": {"high": _quantity(level.value, level.unit)},
        "context": {"text": f"{level.kind} {level.set}"},
        "appliesTo": [applies_to],
    }
    if level.age_min_years is not None or level.age_max_years is not None:
        interval["age"] = {
            k: _quantity(v, "a")
            for k, v in (("low", level.age_min_years), ("high", level.age_max_years))
            if v is not None
        }
    if level.clinical_indication:
        interval["condition"] = level.clinical_indication
    details: list[dict[str, Any]] = [
        {"url": "set", "valueString": level.set},
        {"url": "authority", "valueString": level.authority},
        *([{"url": "country", "valueString": level.country}] if level.country else []),
        {"url": "year", "valueInteger": level.year},
        {"url": "modality", "valueCode": level.modality},
        {"url": "per", "valueCode": level.per},
        {"url": "population", "valueCode": level.population},
        {"url": "current", "valueBoolean": level.current},
        {"url": "verified", "valueBoolean": level.verified},
    ]
    details += [
        {"url": name, "valueQuantity": _quantity(v, "kg")}
        for name, v in (("weightLow", level.weight_min_kg), ("weightHigh", level.weight_max_kg))
        if v is not None
    ]
    details += [
        {"url": name, "valueString": text}
        for name, text in (
            ("phantom", level.phantom),
            ("verification", level.verification),
            ("source", level.source),
        )
        if text
    ]
    return {
        "resourceType": "ObservationDefinition",
        "extension": [{"url": LEVEL_URL, "extension": details}],
        "identifier": [{"system": LEVEL_ID_SYSTEM, "value": level.key}],
        "category": [{"coding": [{"system": KIND_SYSTEM, "code": level.kind}]}],
        "code": {
            "coding": [{"system": DCM, "code": level.quantity_code, "display": level.quantity}]
        },
        "permittedDataType": ["Quantity"],
        "preferredReportName": f"{level.quantity} {level.examination}",
        "quantitativeDetails": {"unit": {"coding": [{"system": UCUM, "code": level.unit}]}},
        "qualifiedInterval": [interval],
    }


def is_dose_level(resource: dict[str, Any]) -> bool:
    """A dose level is an ObservationDefinition categorised by Kerma's level kinds."""
    return any(
        coding.get("system") == KIND_SYSTEM
        for category in resource.get("category") or []
        for coding in category.get("coding") or []
    )


def dose_level(
    resource: dict[str, Any], units: UnitTable, quantities: dict[str, tuple[str, str]]
) -> DoseLevel:
    """The level an ObservationDefinition states: the set, modality and place of the value
    (`per`) in the dose-level extension, everything else in FHIR's own elements. A level
    created by a person gets a 422 naming each element missing or unusable.
    `quantities`: DICOM quantity code -> its canonical unit and name (a CTDIvol level in Gy·m²
    is refused, not compared)."""
    problems: list[Issue] = []

    def problem(text: str, where: str) -> None:
        problems.append(Issue("required", text, expression=f"ObservationDefinition.{where}"))

    details = _details(resource)
    for name in ("set", "modality", "per"):
        if not details.get(name):
            problem(f"the dose-level extension needs {name!r}", f"extension('{LEVEL_URL}')")
    if details.get("per") not in (None, "event", "examination"):
        problem("per is 'event' or 'examination'", f"extension('{LEVEL_URL}')")
    kinds = [c.get("code") for c in _codings(resource.get("category"), KIND_SYSTEM)]
    kind = next((k for k in kinds if k in _KINDS), None)
    if kind is None:
        problem(f"category: one of {', '.join(_KINDS)} ({KIND_SYSTEM})", "category")
    quantity = next(iter(_codings([resource.get("code") or {}], DCM)), {})
    if not quantity.get("code"):
        problem("code: the DICOM (DCM) code of the dose quantity", "code")
    interval = (resource.get("qualifiedInterval") or [{}])[0]
    high = (interval.get("range") or {}).get("high") or {}
    value = unit = None
    try:
        value, unit = units.canonical(float(high["value"]), str(high.get("code") or high["unit"]))
    except (KeyError, TypeError, ValueError):
        problem("the level is qualifiedInterval[0].range.high, a value with a known unit",
                "qualifiedInterval[0].range.high")  # fmt: skip
    code = str(quantity.get("code", ""))
    expected, name = quantities.get(code, (None, code))
    name = str(quantity.get("display") or name)
    if unit is not None and expected is not None and unit != expected:
        problems.append(Issue("value", f"a {name} level is in {expected}, not {unit}",
                              expression="ObservationDefinition.qualifiedInterval[0].range.high"))  # fmt: skip
    applies_to = (interval.get("appliesTo") or [{}])[0]
    examination = applies_to.get("text") or next(
        (c.get("display") for c in applies_to.get("coding") or [] if c.get("display")), ""
    )
    if not examination:
        problem("appliesTo: the examination (text) and its standard procedures (coding)",
                "qualifiedInterval[0].appliesTo")  # fmt: skip
    if problems:
        raise FhirError(422, problems)
    age = interval.get("age") or {}
    return DoseLevel(
        set=details["set"],
        authority=details.get("authority", "local"),
        country=details.get("country", ""),
        year=int(details.get("year", 0)),
        modality=details["modality"],
        examination=str(examination),
        clinical_indication=interval.get("condition", ""),
        quantity_code=str(quantity["code"]),
        quantity=str(name),
        per=details["per"],
        value=value,  # type: ignore[arg-type]  # set when no problem was found
        unit=unit,  # type: ignore[arg-type]
        kind=str(kind),
        population=details.get("population", "adult"),
        age_min_years=(age.get("low") or {}).get("value"),
        age_max_years=(age.get("high") or {}).get("value"),
        weight_min_kg=(details.get("weightLow") or {}).get("value"),
        weight_max_kg=(details.get("weightHigh") or {}).get("value"),
        phantom=details.get("phantom", ""),
        current=details.get("current", True),
        verified=details.get("verified", False),
        verification=details.get("verification", ""),
        source=details.get("source", ""),
        procedures=procedure_codes(resource),
    )


def procedure_codes(resource: dict[str, Any]) -> frozenset[str]:
    """The standard procedures a level applies to, as its appliesTo codes them."""
    applies_to = ((resource.get("qualifiedInterval") or [{}])[0].get("appliesTo")) or []
    return frozenset(
        str(c["code"]) for a in applies_to for c in a.get("coding") or [] if "code" in c
    )


def known_quantities(levels: Iterable[DoseLevel]) -> dict[str, tuple[str, str]]:
    """DICOM quantity code -> (canonical unit, name), as the national table has them."""
    return {lv.quantity_code: (lv.unit, lv.quantity) for lv in levels}


def _details(resource: dict[str, Any]) -> dict[str, Any]:
    for ext in resource.get("extension") or []:
        if ext.get("url") == LEVEL_URL:
            return {
                e["url"]: next(v for k, v in e.items() if k.startswith("value"))
                for e in ext.get("extension") or []
                if "url" in e and any(k.startswith("value") for k in e)
            }
    return {}


def _codings(concepts: Any, system: str) -> list[dict[str, Any]]:
    return [c for cc in concepts or [] for c in cc.get("coding") or [] if c.get("system") == system]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def problems(resource: dict[str, Any]) -> list[Issue]:
    """A dose level written over the API must be one the checks can compare with."""
    if resource.get("resourceType") != "ObservationDefinition" or not is_dose_level(resource):
        return []
    try:
        dose_level(resource, unit_table(), known_quantities(national_levels()))
    except FhirError as e:
        return e.issues
    return []


# the quantities a local level may be set for: key -> (DCM code, name, per, UCUM unit, label)
LEVEL_QUANTITIES = {
    "ctdivol-event": ("113830", "Mean CTDIvol", "event", "mGy", "CTDIvol per acquisition (mGy)"),
    "dlp-examination": ("113813", "CT Dose Length Product Total", "examination", "mGy.cm",
                        "DLP per examination (mGy·cm)"),
    "dap-examination": ("113722", "Dose Area Product Total", "examination", "Gy.m2",
                        "DAP per examination (Gy·m²)"),
    "dap-event": ("122130", "Dose Area Product", "event", "Gy.m2",
                  "DAP per irradiation event (Gy·m²)"),
}  # fmt: skip


def local_level(
    set_name: str, kind: str, procedure: Procedure, modality: str, quantity: str, value: float,
    year: int, source: str,
) -> dict[str, Any]:  # fmt: skip
    """The ObservationDefinition of a level the site sets for one standard procedure (a local
    DRL, or an alert level); 400 for what cannot be one."""
    if quantity not in LEVEL_QUANTITIES or kind not in ("DRL", "alert") or not set_name:
        raise FhirError.of(400, "invalid", "a local level needs a set name, DRL or alert, and "
                           f"one of the quantities {', '.join(LEVEL_QUANTITIES)}")  # fmt: skip
    if not value > 0:
        raise FhirError.of(400, "invalid", "a level's value is above 0")
    code, name, per, unit, _ = LEVEL_QUANTITIES[quantity]
    level = DoseLevel(set_name, "local", "", year, modality, procedure.name, "", code, name, per,
                      value, unit, kind, source=source)  # fmt: skip
    return observation_definition(level, [procedure])
