"""Irradiation event Observations: CT acquisitions (TID 10013) and projection X-ray events
(TID 10003), their components from mappings/dicom/concepts.csv."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.dose.model import (
    CtEvent,
    DoseReport,
    ProjectionEvent,
)
from server.fhir.datatypes import Observation
from server.fhir.mapping.codes import EVENT_CODE
from server.fhir.mapping.components import (
    _code_component,
    _quantity,
    component_value,
    components_of,
    pulse_components,
)
from server.fhir.mapping.context import Context, codeable, fhir_datetime, source_tag, uid_identifier
from server.mappings import concepts


@dataclass(frozen=True)
class Refs:
    patient: str | None
    device: str
    study: str
    performer: str | None = None  # the Practitioner who authorized the irradiation


def ct_event(event: CtEvent, report: DoseReport, ctx: Context, refs: Refs) -> Observation:
    """One CT acquisition (TID 10013) as an Irradiation Event Observation: the components in
    the order of mappings/dicom/concepts.csv (ct_event, then each X-ray source and dose check)."""
    resource = _event_base(event, report, ctx, refs)
    if event.acquisition_type or event.protocol:
        method = codeable(event.acquisition_type) if event.acquisition_type else {}
        if event.protocol:
            method["text"] = event.protocol
        resource["method"] = method
    components = components_of(concepts("ct_event"), event)
    for source in event.sources:
        label = f" (source {source.identification})" if source.identification else ""
        components += components_of(concepts("ct_source"), source, label)
    for check in event.dose_checks:
        components += components_of(
            (*concepts(f"ct_{check.kind}"), *concepts("ct_dose_check")), check
        )
    resource["component"] = components
    return resource


def projection_event(
    event: ProjectionEvent, report: DoseReport, ctx: Context, refs: Refs
) -> Observation:
    """One projection X-ray irradiation event (TID 10003) as an Irradiation Event Observation."""
    resource = _event_base(event, report, ctx, refs)
    if event.protocol:
        resource["method"] = {"text": event.protocol}
    components = components_of(concepts("projection_event"), event)
    components += pulse_components(
        concepts("projection_event"), event.per_pulse, event.pulse_rate_per_s
    )
    grids = [_code_component("111635", "X-Ray Grid", grid) for grid in event.grids]
    components += [c for c in grids if c is not None]
    components += components_of(concepts("projection_header"), event)
    for f in event.filters:
        components += components_of(concepts("projection_filter"), f)
    resource["component"] = components
    return resource


def _event_base(
    event: CtEvent | ProjectionEvent, report: DoseReport, ctx: Context, refs: Refs
) -> Observation:
    """What every irradiation event Observation carries: identity, time, body site, note."""
    resource: Observation = {
        "resourceType": "Observation",
        "meta": source_tag(report.source.kind),
        "identifier": [uid_identifier(event.event_uid, "irradiation-event-uid")],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                    }
                ]
            }
        ],
        "code": {"coding": [EVENT_CODE]},
        "partOf": [{"reference": refs.study}],
        "device": {"reference": refs.device},
    }
    resource.update(subject_of(refs))
    when = event.started or report.irradiation_start or report.study.started
    if when:
        resource["effectiveDateTime"] = fhir_datetime(when, ctx)
    if event.target_region:
        resource["bodySite"] = codeable(event.target_region)
    if event.comment:
        resource["note"] = [{"text": event.comment}]
    return resource


def extend_scan_range(
    stored: dict[str, Any], top_z_mm: float, bottom_z_mm: float
) -> dict[str, Any] | None:
    """A CT event read from images, with its scan range grown to cover another image of the
    series (and the scanning length with it); None when the image lies within the range."""
    top, bottom = component_value(stored, "113897"), component_value(stored, "113898")
    if top is None or bottom is None:
        return None
    new_top, new_bottom = max(top, top_z_mm), min(bottom, bottom_z_mm)
    if (new_top, new_bottom) == (top, bottom):
        return None
    values = {"113897": new_top, "113898": new_bottom, "113825": new_top - new_bottom}
    kept = [c for c in stored.get("component", []) if c["code"]["coding"][0]["code"] not in values]
    displays = {
        "113897": "Top Z Location of Scanning Length",
        "113898": "Bottom Z Location of Scanning Length",
        "113825": "Scanning Length",
    }
    grown = [_quantity(code, displays[code], value, "mm") for code, value in values.items()]
    return {**stored, "component": kept + [c for c in grown if c is not None]}


def subject_of(refs: Refs) -> Observation:
    return {"subject": {"reference": refs.patient}} if refs.patient else {}
