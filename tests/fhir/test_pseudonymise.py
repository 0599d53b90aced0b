"""The examination's and the devices' own words in a pseudonymised resource: removed (PS3.15
Basic Profile), kept when the site says so (its Clean Descriptors Option)."""

from __future__ import annotations

from typing import Any

from server.fhir.pseudonymise import pseudonymised

DCM = "http://dicom.nema.org/resources/ontology/DCM"
STUDY: dict[str, Any] = {
    "resourceType": "ImagingStudy", "status": "available", "description": "Thorax Dr Who",
    "procedureCode": [{"coding": [{"system": "http://www.radlex.org", "code": "RPID16"}],
                       "text": "CT chest for Mr Smith"}],
}  # fmt: skip
EVENT: dict[str, Any] = {
    "resourceType": "Observation", "status": "final", "method": {"text": "Thorax Mrs Jones"},
    "code": {"coding": [{"system": DCM, "code": "113819"}]},
    "component": [
        {"code": {"coding": [{"system": DCM, "code": "125203"}]}, "valueString": "Thorax Mrs Jones"},
        {"code": {"coding": [{"system": DCM, "code": "113830"}]},
         "valueQuantity": {"value": 8.1, "unit": "mGy", "system": "http://unitsofmeasure.org", "code": "mGy"}},
    ],
}  # fmt: skip


def test_descriptions_are_removed_and_coded_values_kept() -> None:
    study = pseudonymised(STUDY, b"k", "day")
    assert "description" not in study
    assert study["procedureCode"] == [{"coding": STUDY["procedureCode"][0]["coding"]}]
    event = pseudonymised(EVENT, b"k", "day")
    assert "method" not in event
    assert [c["code"]["coding"][0]["code"] for c in event["component"]] == ["113830"]
    assert STUDY["description"] == "Thorax Dr Who"  # the stored resource is not changed


def test_descriptions_are_kept_when_the_site_says_so() -> None:
    study = pseudonymised(STUDY, b"k", "day", descriptions=True)
    assert study["description"] == "Thorax Dr Who"
    assert study["procedureCode"][0]["text"] == "CT chest for Mr Smith"
    event = pseudonymised(EVENT, b"k", "day", descriptions=True)
    assert event["method"] == {"text": "Thorax Mrs Jones"} and len(event["component"]) == 2
