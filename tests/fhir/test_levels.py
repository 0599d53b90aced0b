"""Dose levels over FHIR: the national DRLs as ObservationDefinitions (valid R4, searchable,
readable by the authority role), loaded idempotently; local levels created over the API."""

from __future__ import annotations

from typing import Any

from server.dose.drl import levels_from_rows
from server.fhir import FhirService
from server.fhir.levels import LEVEL_ID_SYSTEM, load
from server.fhir.validation import validate
from server.mappings import read_csv_rows, unit_table
from tests.conftest import Api

DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _load(service: FhirService) -> tuple[int, int]:
    return load(service, levels_from_rows(read_csv_rows("drl/national.csv"), unit_table()))


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
    assert interval["appliesTo"] == [{"text": "Head"}]
    assert interval["age"]["low"]["value"] == 18
    details = {e["url"]: e for e in level["extension"][0]["extension"]}
    assert details["per"]["valueCode"] == "event" and details["verified"]["valueBoolean"] is True
    assert details["year"]["valueInteger"] == 2022


def test_a_local_alert_level_over_the_api(api: Api, as_role: Any) -> None:
    local = {
        "resourceType": "ObservationDefinition",
        "identifier": [{"system": LEVEL_ID_SYSTEM, "value": "local-ct-head-alert"}],
        "category": [{"coding": [{"system": "https://kerma.example.org/fhir/CodeSystem/dose-level-kind", "code": "alert"}]}],
        "code": {"coding": [{"system": DCM, "code": "113830", "display": "Mean CTDIvol"}]},
        "permittedDataType": ["Quantity"],
        "qualifiedInterval": [{"category": "critical", "range": {"high": {"value": 120, "unit": "mGy", "system": "http://unitsofmeasure.org", "code": "mGy"}}, "appliesTo": [{"text": "Head"}]}],
    }  # fmt: skip
    assert as_role("viewer").post("/fhir/ObservationDefinition", local).status_code == 403
    created = api.post("/fhir/ObservationDefinition", local)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert (
        api.search("/fhir/ObservationDefinition?identifier=local-ct-head-alert")[0][
            "qualifiedInterval"
        ][0]["category"]
        == "critical"
    )
