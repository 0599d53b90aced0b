"""`Patient/<id>/$everything`: the patient's record in one Bundle (the Patient, every stored
resource whose `patient` search parameter points at them, not the audit trail) with the
patient's cumulative dose per modality (H5) as Observations computed for the answer.

The cumulative Observations are not stored: they are sums over the examinations stored, made
when asked, each saying so (`meta.tag` computed) and naming the period it covers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from server.fhir import registry
from server.fhir.service import FhirService
from server.store.port import Stored

UCUM = "http://unitsofmeasure.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SUMMARY_CODE = {"system": "https://kerma.example.org/fhir/CodeSystem/dose-summary",
                "code": "cumulative-dose", "display": "Cumulative patient dose"}  # fmt: skip
COMPUTED_TAG = {"system": "https://kerma.example.org/fhir/CodeSystem/provenance-kind",
                "code": "computed", "display": "computed when asked, not stored"}  # fmt: skip
# the study-level quantities (dose facts fields) as DICOM concepts with their UCUM units
_QUANTITIES = {
    "dlp_mgy_cm": ("113813", "CT Dose Length Product Total", "mGy.cm"),
    "dap_gy_m2": ("113722", "Dose Area Product Total", "Gy.m2"),
    "dose_rp_gy": ("113725", "Dose (RP) Total", "Gy"),
    "agd_mgy": ("111637", "Accumulated Average Glandular Dose", "mGy"),
}
_SKIPPED = frozenset({"AuditEvent", "Patient"})  # the audit trail is not the patient's record


def record(service: FhirService, patient: str, visible: Callable[[Stored], bool]) -> list[Stored]:
    """The Patient and every resource pointing at them that the user may see."""
    found = [service.read("Patient", patient)]
    ref = f"Patient/{patient}"
    for rtype in registry.resource_types():
        param = registry.param(rtype, "patient")
        if rtype in _SKIPPED or param is None or not param.allows_target("Patient"):
            continue
        found += service.all_in(service.store, rtype, [("patient", ref)])
    return [s for s in found if visible(s)]


def cumulative_observations(
    patient: str, rows: list[dict[str, Any]], start: str, end: str
) -> list[dict[str, Any]]:
    """One Observation per modality: the examinations of [start, end) and the sums of the
    physical dose quantities they had (rows of Statistics.cumulative)."""
    observations = []
    for row in rows:
        components: list[dict[str, Any]] = [
            {"code": {"coding": [{"system": DCM, "code": "121139", "display": "Modality"}]},
             "valueCodeableConcept": {"coding": [{"system": DCM, "code": row["modality"]}]}},
            {"code": {"text": "examinations"}, "valueInteger": row["examinations"]},
        ]  # fmt: skip
        if row["effective_dose_msv_estimate_examinations"]:
            components.append({
                "code": {"coding": [{"system": DCM, "code": "113839", "display": "Effective Dose"}],
                         "text": "Effective dose estimated by Kerma (k-factors), sum over "
                                 f"{row['effective_dose_msv_estimate_examinations']} examinations: "
                                 "a population estimate, not this patient's dose or risk"},
                "valueQuantity": {"value": row["effective_dose_msv_estimate"], "unit": "mSv",
                                  "system": UCUM, "code": "mSv"},
            })  # fmt: skip
        for field, (code, display, unit) in _QUANTITIES.items():
            counted = row[f"{field}_examinations"]
            if counted:
                components.append({
                    "code": {"coding": [{"system": DCM, "code": code, "display": display}],
                             "text": f"{display}, sum over {counted} examinations"},
                    "valueQuantity": {"value": row[field], "unit": unit, "system": UCUM, "code": unit},
                })  # fmt: skip
        observations.append({
            "resourceType": "Observation",
            "id": str(uuid.uuid4()),
            "meta": {"tag": [COMPUTED_TAG]},
            "status": "final",
            "code": {"coding": [SUMMARY_CODE]},
            "subject": {"reference": patient},
            "effectivePeriod": {"start": start, "end": end},
            "note": [{"text": f"{row['examinations']} {row['modality']} examinations from "
                              f"{row['first']} to {row['last']}; physical dose quantities summed"}],
            "component": components,
        })  # fmt: skip
    return observations


def bundle(resources: list[dict[str, Any]], base: str, now: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": now},
        "total": len(resources),
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources],
    }  # fmt: skip
