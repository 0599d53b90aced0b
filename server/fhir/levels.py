"""Dose levels (DRLs, optimisation targets, local alert levels) as FHIR ObservationDefinitions,
so that EHRs and BI tools read them where they read everything else.

The level is a qualified interval with a high bound (`category: reference` for a DRL,
`critical` for an alert level), the examination in `appliesTo`, the clinical indication in
`condition`, the age band in `age`; what FHIR has no element for (authority, year, weight
band, whether it is in force and was read in the authority's own text) is in the extension
https://kerma.example.org/fhir/StructureDefinition/dose-level.
"""

from __future__ import annotations

from typing import Any

from server.dose.drl import DoseLevel
from server.fhir.mapping import DCM, UCUM
from server.fhir.service import FhirService, body_of

LEVEL_URL = "https://kerma.example.org/fhir/StructureDefinition/dose-level"
KIND_SYSTEM = "https://kerma.example.org/fhir/CodeSystem/dose-level-kind"
LEVEL_ID_SYSTEM = "urn:kerma:dose-level"
_INTERVAL = {"DRL": "reference", "VGD": "reference", "alert": "critical"}


def observation_definition(level: DoseLevel) -> dict[str, Any]:
    interval: dict[str, Any] = {
        "category": _INTERVAL.get(level.kind, "reference"),
        "range": {"high": _quantity(level.value, level.unit)},
        "context": {"text": f"{level.kind} {level.set}"},
        "appliesTo": [{"text": level.examination}],
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
        {"url": "country", "valueString": level.country},
        {"url": "year", "valueInteger": level.year},
        {"url": "modality", "valueCode": level.modality},
        {"url": "per", "valueCode": level.per},
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


def load(service: FhirService, levels: list[DoseLevel]) -> tuple[int, int]:
    """Create or update one ObservationDefinition per level; (created, updated)."""
    created = updated = 0
    with service.store.transaction() as tx:
        for level in levels:
            body = observation_definition(level)
            pairs = [("identifier", f"{LEVEL_ID_SYSTEM}|{level.key}")]
            found = service.all_in(tx, "ObservationDefinition", pairs)
            if not found:
                service.create_in(tx, "ObservationDefinition", body, trusted=True)
                created += 1
            elif {k: v for k, v in body_of(found[0]).items() if k not in ("id", "meta")} != body:
                body["id"] = found[0].rid
                service.update_in(tx, "ObservationDefinition", found[0].rid, body, trusted=True)
                updated += 1
    return created, updated


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}
