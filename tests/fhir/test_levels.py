"""Dose levels over FHIR: the national DRLs as ObservationDefinitions (valid R4, searchable,
readable by the authority role), loaded idempotently; local levels created over the API."""

from __future__ import annotations

from typing import Any

import pytest

from server.fhir import FhirService
from server.fhir.errors import FhirError
from server.fhir.validation import validate
from server.mappings import national_levels, unit_table
from server.site.levels import (
    KIND_SYSTEM,
    LEVEL_ID_SYSTEM,
    LEVEL_URL,
    dose_level,
    known_quantities,
    observation_definition,
)
from server.site.tables import load
from tests.conftest import Api

DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"


def _load(service: FhirService) -> tuple[int, int]:
    return load(service, list(national_levels()))


_EXAMINATIONS = {
    "ct-cap-w": "CT chest, abdomen, pelvis",
    "ct-acq-abdomen-pelvis": "CT abdomen-pelvis sequence",
}


def local_level(
    set_name: str, kind: str, code: str, per: str, value: float, unit: str, procedure: str
) -> dict[str, Any]:
    """A level as a medical physicist writes it over the API: the few fields a check needs."""
    return {
        "resourceType": "ObservationDefinition",
        "extension": [{"url": LEVEL_URL, "extension": [
            {"url": "set", "valueString": set_name},
            {"url": "modality", "valueCode": "CT"},
            {"url": "per", "valueCode": per},
        ]}],
        "identifier": [{"system": LEVEL_ID_SYSTEM, "value": f"{set_name}-{kind}-{code}".replace(" ", "-")}],
        "category": [{"coding": [{"system": KIND_SYSTEM, "code": kind}]}],
        "code": {"coding": [{"system": DCM, "code": code}]},
        "permittedDataType": ["Quantity"],
        "qualifiedInterval": [{
            "category": "critical" if kind == "alert" else "reference",
            "range": {"high": {"value": value, "unit": unit, "system": UCUM, "code": unit}},
            "appliesTo": [{"text": _EXAMINATIONS.get(procedure, procedure), "coding": [
                {"system": "https://kerma.example.org/fhir/CodeSystem/procedure", "code": procedure}
            ]}],
        }],
    }  # fmt: skip


def test_every_national_level_reads_back_from_fhir_as_it_was() -> None:
    units = known_quantities(national_levels())
    for level in national_levels():
        assert dose_level(observation_definition(level), unit_table(), units) == level


def test_national_levels_load_once_and_are_valid_fhir(service: FhirService, api: Api) -> None:
    assert _load(service) == (224, 0)
    assert _load(service) == (0, 0)
    found = api.search(f"/fhir/ObservationDefinition?code={DCM}|113830&_count=200")
    assert len(found) == 83  # every CTDIvol level
    for resource in found[:20]:
        assert validate(resource) == [], resource


def test_a_uk_level_as_fhir(service: FhirService, as_role: Any) -> None:
    _load(service)
    key = "ukhsa-gb-2022/drl/ct/head/acute-stroke/18-y-kg/113830"
    [level] = as_role("authority").search(
        f"/fhir/ObservationDefinition?identifier={LEVEL_ID_SYSTEM}|{key}"
    )
    interval = level["qualifiedInterval"][0]
    assert interval["range"]["high"] == {
        "value": 47.0,
        "unit": "mGy",
        "system": "http://unitsofmeasure.org",
        "code": "mGy",
    }
    assert interval["category"] == "reference" and interval["condition"] == "Acute stroke"
    assert interval["appliesTo"] == [
        {
            "text": "Head",
            "coding": [
                {"system": "http://radlex.org", "code": code, "display": name}
                for code, name in (
                    ("RPID22", "CT Head wo IV Contrast"),
                    ("RPID23", "CT Head w and wo IV Contrast"),
                    ("RPID24", "CT Head w IV Contrast"),
                )
            ]
            + [  # per sequence, for the head acquisitions of any examination
                {
                    "system": "https://kerma.example.org/fhir/CodeSystem/procedure",
                    "code": "ct-acq-head",
                    "display": "CT acquisition: head",
                }
            ],
        }
    ]
    assert interval["age"]["low"]["value"] == 18
    details = {e["url"]: e for e in level["extension"][0]["extension"]}
    assert details["per"]["valueCode"] == "event" and details["verified"]["valueBoolean"] is True
    assert details["year"]["valueInteger"] == 2022


def test_a_local_alert_level_over_the_api(api: Api, as_role: Any) -> None:
    local = local_level("Site 2026", "alert", "113830", "event", 120, "mGy", "ct-cap-w")
    assert as_role("viewer").post("/fhir/ObservationDefinition", local).status_code == 403
    created = api.post("/fhir/ObservationDefinition", local)
    assert created.status_code == 201, created.get_data(as_text=True)
    [found] = api.search("/fhir/ObservationDefinition?identifier=Site-2026-alert-113830")
    assert found["qualifiedInterval"][0]["category"] == "critical"


@pytest.mark.parametrize(
    ("change", "expression", "text"),
    [
        (lambda r: r.pop("extension"), f"extension('{LEVEL_URL}')", "needs 'set'"),
        (lambda r: r["code"]["coding"][0].update(system="http://loinc.org"), "code", "DICOM"),
        (lambda r: r["qualifiedInterval"][0]["range"]["high"].update(code="furlong", unit="furlong"),
         "qualifiedInterval[0].range.high", "known unit"),
        (lambda r: r["qualifiedInterval"][0]["range"]["high"].update(code="Gy.m2", unit="Gy.m2"),
         "qualifiedInterval[0].range.high", "level is in mGy, not Gy.m2"),
        (lambda r: r["qualifiedInterval"][0].pop("appliesTo"), "qualifiedInterval[0].appliesTo",
         "the examination"),
    ],
)  # fmt: skip
def test_a_level_the_checks_cannot_use_is_refused(
    api: Api, change: Any, expression: str, text: str
) -> None:
    level = local_level("Site 2026", "DRL", "113830", "event", 10, "mGy", "ct-cap-w")
    change(level)
    refused = api.post("/fhir/ObservationDefinition", level)
    assert refused.status_code == 422
    issues = refused.get_json()["issue"]
    assert any(
        i["expression"] == [f"ObservationDefinition.{expression}"] and text in i["diagnostics"]
        for i in issues
    ), issues
    with pytest.raises(FhirError):
        dose_level(level, unit_table(), known_quantities(national_levels()))
