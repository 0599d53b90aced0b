"""DetectedIssues: what the checks found wrong with a dose report, for people to review."""

from __future__ import annotations

from typing import Any

from server.dose.drl import Exceedance
from server.fhir.levels import LEVEL_ID_SYSTEM
from server.fhir.mapping import Context, fhir_datetime

ISSUE_SYSTEM = "https://kerma.example.org/fhir/CodeSystem/dose-issue"
ISSUE_ID_SYSTEM = "urn:kerma:detected-issue"
_UNITS = {"mGy": "mGy", "mGy.cm": "mGy·cm", "Gy.m2": "Gy·m²"}


def issue_key(exceedance: Exceedance, study_uid: str) -> str:
    """One issue per value and level: the same report stored again raises nothing new."""
    where = exceedance.value.event_uid or f"study:{study_uid}"
    return f"{where}/{exceedance.level.key}"


def drl_exceeded(
    exceedance: Exceedance,
    study_uid: str,
    refs: tuple[str | None, str, str],  # patient, study, the Observation holding the value
    when: Any,
    ctx: Context,
) -> dict[str, Any]:
    level, value = exceedance.level, exceedance.value
    patient_ref, study_ref, observation_ref = refs
    unit = _UNITS.get(level.unit, level.unit)
    where = "an irradiation event" if value.event_uid else "the examination"
    detail = (
        f"{level.quantity} {value.value:.4g} {unit} of {where} is {exceedance.ratio:.2f} times the "
        f"{level.set} DRL of {level.value:.4g} {unit} for {level.examination}"
        + (f" ({level.clinical_indication})" if level.clinical_indication else "")
    )
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "identifier": [{"system": ISSUE_ID_SYSTEM, "value": issue_key(exceedance, study_uid)}],
        "status": "preliminary",
        "code": {
            "coding": [
                {
                    "system": ISSUE_SYSTEM,
                    "code": "drl-exceeded",
                    "display": "Diagnostic reference level exceeded",
                }
            ]
        },
        "severity": "moderate",
        "identifiedDateTime": fhir_datetime(when, ctx),
        "implicated": [{"reference": observation_ref}, {"reference": study_ref}],
        "detail": detail,
        "evidence": [
            {
                "code": [{"text": f"{level.kind} {level.set}"}],
                "detail": [{"identifier": {"system": LEVEL_ID_SYSTEM, "value": level.key}}],
            }
        ],
    }
    if patient_ref:
        issue["patient"] = {"reference": patient_ref}
    return issue
