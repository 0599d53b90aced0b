"""Each CT acquisition and each radiograph (DX, MG) classified to a standard procedure of its
own, from its Irradiation Event Observation: a chest/abdomen/pelvis examination may hold a
head acquisition, and per-acquisition DRLs (CT per sequence, radiography per radiograph) are
compared with the acquisition's procedure. RF/XA are classified per examination only.

The decision is the extension .../classification on the Observation, as on the study:
`rule` (`examination` when no acquisition rule matched and the study's procedure applies),
`version`, and `procedure` (a Coding; absent for localizers, bolus tracking and QA).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.dose.classify import PER_ACQUISITION, Acquisition, Procedure, Rules, modality_group
from server.fhir.mapping import CLASSIFICATION_URL, classifying_rule, extension, put_extension

_CODES = {  # DICOM codes of the event's components that classification reads
    "acquisition_type": "113820",
    "view": "111031",
    "laterality": "272741003",
    "orientation": "113743",
    "phantom": "113835",
}


def classify_event(
    event: dict[str, Any],
    modality: str,
    rules: Rules,
    study_procedure: Procedure | None,
    study_rule: str,
) -> None:
    """Put the acquisition's decision on its Observation (CT, DX, MG only)."""
    if modality_group(modality) not in PER_ACQUISITION:
        return
    found = None
    if study_rule == "qa":  # nothing of a physics or QA study is a patient procedure
        procedure, rule = None, "qa"
    else:
        found = rules.classify_acquisition(acquisition_of(event, modality))
        procedure, rule = (
            (found.procedure, found.rule) if found else (study_procedure, "examination")
        )
    decision: list[dict[str, Any]] = [
        {"url": "rule", "valueString": rule},
        {"url": "version", "valueInteger": rules.version},
    ]
    if found is not None:
        decision.append({"url": "confidence", "valueCode": found.confidence})
    if procedure is not None:
        coding = {"system": procedure.system, "code": procedure.code, "display": procedure.name}
        decision.append({"url": "procedure", "valueCoding": coding})
    put_extension(event, CLASSIFICATION_URL, {"url": CLASSIFICATION_URL, "extension": decision})


def event_procedure(event: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """(classified per acquisition, the procedure's Coding or None for no procedure)."""
    found = extension(event, CLASSIFICATION_URL)
    if found is None:
        return False, None
    coding = next((e["valueCoding"] for e in found["extension"] if e["url"] == "procedure"), None)
    return True, coding


def acquisition_doses(
    events: list[dict[str, Any]], regions: Mapping[str, str]
) -> tuple[list[tuple[float, str, float | None]], float] | None:
    """(DLP, k-factor region of its procedure, kVp) of each CT acquisition with a DLP, and the
    DLP of those decided to be of no procedure (localizers, bolus tracking); None when one with
    a DLP is undecided or its procedure has no k-factor region (`regions`: code -> region)."""
    parts: list[tuple[float, str, float | None]] = []
    left_out = 0.0
    for event in events:
        dlp = _quantity(event, "113838")
        classified, coding = event_procedure(event)
        if not dlp or not classified:
            continue
        if coding is None and classifying_rule(event) != "examination":
            left_out += dlp
            continue
        region = regions.get(coding["code"]) if coding else None
        if region is None:
            return None
        parts.append((dlp, region, _quantity(event, "113733")))
    return parts, left_out


def acquisitions_of_events(events: list[dict[str, Any]], modality: str) -> list[Acquisition]:
    """The stored study's acquisitions as acquisition rules read them (none for RF, XA)."""
    if modality_group(modality) not in PER_ACQUISITION:
        return []
    return [acquisition_of(e, modality) for e in events]


def acquisition_of(event: dict[str, Any], modality: str) -> Acquisition:
    """The words of an Irradiation Event Observation that acquisition rules read."""
    body_site = event.get("bodySite") or {}
    length = _quantity(event, "113825")
    return Acquisition(
        modality=modality,
        protocol=str((event.get("method") or {}).get("text", "")),
        region=_concept_text(body_site),
        scan_length_mm=length,
        **{name: _concept_text(_component(event, code)) for name, code in _CODES.items()},
    )


def _component(event: dict[str, Any], code: str) -> dict[str, Any]:
    for component in event.get("component", []):
        if component["code"]["coding"][0]["code"] == code:
            return component.get("valueCodeableConcept") or {}
    return {}


def _quantity(event: dict[str, Any], code: str) -> float | None:
    for component in event.get("component", []):
        if component["code"]["coding"][0]["code"] == code and "valueQuantity" in component:
            return float(component["valueQuantity"]["value"])
    return None


def _concept_text(concept: dict[str, Any]) -> str:
    coding = (concept.get("coding") or [{}])[0]
    return str(coding.get("display") or concept.get("text") or coding.get("code") or "")
