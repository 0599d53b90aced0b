"""The Radiation Dose Summary Observation of a study (IG STU 1): CT and projection X-ray
totals, over all the study's events and reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from server.dose.model import (
    Coded,
    DoseReport,
    MammographyTotal,
    ProjectionTotals,
)
from server.fhir.datatypes import Observation, ObservationComponent
from server.fhir.mapping.codes import (
    ACCESSION_TYPE,
    LOINC,
    QUALITY_TAG,
    SUMMARY_CODE,
)
from server.fhir.mapping.components import (
    _acquisition_type,
    _code_component,
    _component_coding,
    _datetime_component,
    _integer,
    _quantity,
    _sum,
    component_datetime,
    component_value,
    number,
)
from server.fhir.mapping.context import (
    Context,
    _instant_key,
    fhir_datetime,
    source_tag,
    uid_identifier,
)
from server.fhir.mapping.events import Refs, subject_of


def projection_summary(
    report: DoseReport,
    ctx: Context,
    refs: Refs,
    events: list[dict[str, Any]],
    sop_uids: Iterable[str],
    previous: dict[str, Any] | None,
) -> Observation:
    """The study's Radiation Dose Summary for projection X-ray (DX, RF/XA, MG).

    Accumulated totals are the reports' own (TID 10002); a second report of the same study
    adds its totals to the stored ones. DAP is summed over planes, Dose (RP) never is.
    Image headers carry no totals: theirs are summed over the study's events.
    """
    from_headers = report.source.kind == "image-header"
    if from_headers:
        report = replace(report, **_totals_from_events(events))
    resource = _summary_base(report, ctx, refs, events, sop_uids, previous)
    planes = report.projection_totals
    biplane = len(planes) > 1
    added = previous is not None and bool(previous.get("component")) and not from_headers
    components: list[ObservationComponent | None] = list(resource.pop("component"))
    dap_sum_gy_m2 = _sum(t.dap_total_gy_m2 for t in planes)

    def dap(value: float | None) -> float | None:  # IG: totals in mGy.cm2, the RDSR says Gy.m2
        return ctx.convert(value, "Gy.m2", "mGy.cm2")

    def rp(value: float | None) -> float | None:
        return ctx.convert(value, "Gy", "mGy")

    if dap_sum_gy_m2 is not None:  # the study-wide DAP first: readers take the first 113722
        components.append(
            _quantity("113722", "Dose Area Product Total", dap(dap_sum_gy_m2), "mGy.cm2")
        )
    for t in planes:
        label = f" ({t.plane.meaning})" if biplane and t.plane else ""
        components += [
            _quantity(
                "113722", "Dose Area Product Total" + label, dap(t.dap_total_gy_m2), "mGy.cm2"
            )
            if biplane
            else None,
            _quantity("113725", "Dose (RP) Total" + label, rp(t.dose_rp_total_gy), "mGy"),
            _quantity(
                "113726",
                "Fluoro Dose Area Product Total" + label,
                dap(t.fluoro_dap_total_gy_m2),
                "mGy.cm2",
            ),
            _quantity(
                "113728", "Fluoro Dose (RP) Total" + label, rp(t.fluoro_dose_rp_total_gy), "mGy"
            ),
            _quantity("113730", "Total Fluoro Time" + label, t.fluoro_time_s, "s"),
            _quantity(
                "113727",
                "Acquisition Dose Area Product Total" + label,
                dap(t.acquisition_dap_total_gy_m2),
                "mGy.cm2",
            ),
            _quantity(
                "113729",
                "Acquisition Dose (RP) Total" + label,
                rp(t.acquisition_dose_rp_total_gy),
                "mGy",
            ),
            _quantity("113855", "Total Acquisition Time" + label, t.acquisition_time_s, "s"),
            _integer(
                "113731", "Total Number of Radiographic Frames" + label, t.radiographic_frames
            ),
            _quantity("111636", "Entrance Exposure at RP" + label, t.entrance_exposure_mgy, "mGy"),
            _code_component(
                "113780", "Reference Point Definition" + label, t.reference_point_definition
            ),
        ]
    for mg in report.mammography_totals:
        side = f" ({mg.laterality.meaning})" if mg.laterality and mg.laterality.meaning else ""
        components.append(
            _quantity("111637", "Accumulated Average Glandular Dose" + side, mg.agd_mgy, "mGy")
        )
    merged = [c for c in components if c is not None]
    resource["component"] = _add_totals(previous, merged) if previous and added else merged
    resource["valueString"] = _projection_text(resource["component"], len(events))
    return resource


def _add_findings(resource: Observation, report: DoseReport, previous: dict[str, Any]) -> None:
    """Plausibility findings (I9) stay on the summary as notes; the tag makes them searchable
    (`Observation?_tag=https://kerma.example.org/fhir/CodeSystem/dose-quality|plausibility-warning`)."""
    notes = list(previous.get("note", []))
    uid = report.source.sop_instance_uid
    notes += [
        {"text": f"{f.severity} {f.code} in {uid} at {f.path}: {f.message}"}
        for f in report.findings
        if f.severity != "information"
    ]
    if notes:
        resource["note"] = notes
        resource["meta"]["tag"] = [*resource["meta"].get("tag", []), QUALITY_TAG]


def _totals_from_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """DAP summed over the events, and AGD summed per breast: what header-only studies have."""
    daps = [v for e in events if (v := component_value(e, "122130")) is not None]
    per_side: dict[str, tuple[Coded, float]] = {}
    for e in events:
        agd = component_value(e, "111631")
        side = _component_coding(e, "272741003")
        if agd is None or side is None:
            continue
        key = side["code"]
        known = per_side.get(key)
        per_side[key] = (
            Coded("SCT", key, side.get("display", "")),
            (known[1] if known else 0.0) + agd,
        )
    totals = ProjectionTotals(
        plane=Coded("DCM", "113622", "Single Plane"), dap_total_gy_m2=sum(daps) if daps else None
    )
    return {
        "projection_totals": (totals,) if daps else (),
        "mammography_totals": tuple(MammographyTotal(side, agd) for side, agd in per_side.values()),
    }


def _summary_base(
    report: DoseReport,
    ctx: Context,
    refs: Refs,
    events: list[dict[str, Any]],
    sop_uids: Iterable[str],
    previous: dict[str, Any] | None,
) -> Observation:
    """What every Radiation Dose Summary carries, whatever the modality."""
    previous = previous or {}
    resource: Observation = {
        "resourceType": "Observation",
        "meta": source_tag(report.source.kind),
        "identifier": [uid_identifier(uid, "sop-instance-uid") for uid in sorted(set(sop_uids))],
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
        "code": {"coding": [SUMMARY_CODE]},
        "partOf": [
            {
                "reference": refs.study,
                "identifier": uid_identifier(report.study.study_uid, "study-instance-uid"),
            }
        ],
        "focus": [{"reference": refs.study}],
        "device": {"reference": refs.device},
        "hasMember": [{"reference": f"Observation/{e['id']}"} for e in events],
    }
    if report.study.accession:
        resource["basedOn"] = [
            {
                "identifier": {
                    "type": ACCESSION_TYPE,
                    "value": report.study.accession,
                }
            }
        ]
    resource.update(subject_of(refs))
    if refs.performer:  # the IG's irradiation authorizing person
        resource["performer"] = [{"reference": refs.performer}]
    _add_findings(resource, report, previous)
    previous_start = component_datetime(previous, "113809")
    previous_end = component_datetime(previous, "113810")
    starts = [fhir_datetime(t, ctx) for t in (report.irradiation_start,) if t] + (
        [previous_start] if previous_start else []
    )
    ends = [fhir_datetime(t, ctx) for t in (report.irradiation_end,) if t] + (
        [previous_end] if previous_end else []
    )
    event_starts = sorted(
        (e["effectiveDateTime"] for e in events if "effectiveDateTime" in e), key=_instant_key
    )
    start = min(starts, key=_instant_key) if starts else (event_starts[0] if event_starts else None)
    if start:
        resource["effectiveDateTime"] = start
    procedure = report.procedure_reported
    resource["component"] = [
        c
        for c in (
            _code_component("121058", "Procedure reported", procedure) if procedure else None,
            _datetime_component("113809", "Start of X-Ray Irradiation", start),
            _datetime_component(
                "113810", "End of X-Ray Irradiation", max(ends, key=_instant_key) if ends else None
            ),
            _code_component(
                "113854", "Source of Dose Information", report.source.information_source
            ),
            _integer("113812", "Total Number of Irradiation Events", len(events)),
            _quantity("30525-0", "Age", report.patient.age_years, "a", scheme=LOINC),
        )
        if c is not None
    ]
    return resource


_ADDITIVE_UNITS = ("mGy.cm2", "mGy", "s")


def _add_totals(
    previous: dict[str, Any], new: list[ObservationComponent]
) -> list[ObservationComponent]:
    """A second report of the study: its accumulated totals add to the stored ones."""
    stored = {_component_key(c): c for c in previous.get("component", [])}
    out = []
    for component in new:
        old = stored.get(_component_key(component))
        if (
            old is not None
            and "valueQuantity" in old
            and "valueQuantity" in component
            and component["valueQuantity"]["code"] in _ADDITIVE_UNITS
        ):
            total = old["valueQuantity"]["value"] + component["valueQuantity"]["value"]
            component = {
                **component,
                "valueQuantity": {**component["valueQuantity"], "value": number(total)},
            }
        elif (
            old is not None
            and "valueInteger" in old
            and "valueInteger" in component
            and component["code"]["coding"][0]["code"] == "113731"
        ):
            component = {
                **component,
                "valueInteger": old["valueInteger"] + component["valueInteger"],
            }
        out.append(component)
    return out


def _component_key(component: Mapping[str, Any]) -> tuple[str, str]:
    coding = component["code"]["coding"][0]
    return coding["code"], coding.get("display", "")


def _projection_text(components: list[ObservationComponent], n_events: int) -> str:
    parts = []
    for component in components:
        coding = component["code"]["coding"][0]
        if (
            coding["code"] in ("113722", "113725", "113730", "111637")
            and "valueQuantity" in component
        ):
            q = component["valueQuantity"]
            parts.append(f"{coding['display']} = {q['value']:g} {q['unit']}")
    return "; ".join([*parts, f"{n_events} irradiation events"])


def ct_summary(
    report: DoseReport,
    ctx: Context,
    refs: Refs,
    events: list[dict[str, Any]],
    sop_uids: Iterable[str],
    previous: dict[str, Any] | None,
) -> Observation:
    """The study's Radiation Dose Summary (IG STU 1) over all its CT events, stored and new.

    Totals are recomputed from the events, so continued and cumulative RDSRs of one study add up.
    """
    if report.procedure_reported is None:
        report = replace(
            report, procedure_reported=Coded("SCT", "77477000", "Computed Tomography X-Ray")
        )
    resource = _summary_base(report, ctx, refs, events, sop_uids, previous)
    dlp_total = _ct_dlp_total(report, events, previous)
    ctdis = [
        c
        for e in events
        if _acquisition_type(e) != "113805" and (c := component_value(e, "113830")) is not None
    ]
    resource["component"] += [
        c
        for c in (
            _quantity("113813", "CT Dose Length Product Total", dlp_total, "mGy.cm"),
            _quantity(
                "113830",
                "Mean CTDIvol (maximum over non-localizer events)",
                max(ctdis, default=None),
                "mGy",
            ),
        )
        if c is not None
    ]
    dlp_text = f"{dlp_total:g} mGy.cm" if dlp_total is not None else "not reported"
    resource["valueString"] = (
        f"CT Dose Length Product Total = {dlp_text} over {len(events)} irradiation events"
    )
    return resource


def _ct_dlp_total(
    report: DoseReport, events: list[dict[str, Any]], previous: dict[str, Any] | None
) -> float | None:
    """The study's DLP total: as its one report states it; over several reports (continued
    RDSRs), the sum of all their events; without event DLPs (MPPS), the stated totals summed."""
    stated_alone = report.ct_totals.dlp_total_mgy_cm if report.ct_totals else None
    if stated_alone is not None and not (previous or {}).get("component"):
        return stated_alone
    dlps = [d for e in events if (d := component_value(e, "113838")) is not None]
    if dlps:
        return round(sum(dlps), 4)
    stated = [
        report.ct_totals.dlp_total_mgy_cm if report.ct_totals else None,
        component_value(previous or {}, "113813"),
    ]
    known = [v for v in stated if v is not None]
    return round(sum(known), 4) if known else None
