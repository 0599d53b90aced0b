"""The calculation stage of ingest: what Kerma computes from a dose report before it writes
anything, outside the store's write transaction (a skin dose map takes up to hundreds of ms;
other writers would wait that long for the lock).

The stage reads (the patient's latest height and weight) but writes nothing; the write stage
(`pipeline.py`) stores what it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from server.dose.model import DoseReport
from server.dose.skin import SkinDoseMap, TableGeometry, skin_dose_map
from server.dose.ssde import Estimate, size_of, ssde
from server.fhir import mapping
from server.fhir.mapping.device import device_key, table_geometry
from server.fhir.service import FhirService, body_of
from server.mappings import skin_dose_factors, ssde_tables
from server.patients import identity as patients

HEIGHT, WEIGHT = "8302-2", "29463-7"  # LOINC body height, body weight


@dataclass(frozen=True)
class Calculated:
    """The dose Kerma calculated for one report (each None or empty when it cannot)."""

    ssde: dict[str, Estimate] = field(default_factory=dict)  # by Irradiation Event UID
    skin: SkinDoseMap | None = None


def calculate(report: DoseReport, service: FhirService, ctx: mapping.Context) -> Calculated:
    return Calculated(ssde_estimates(report), skin_map(report, service, ctx))


def ssde_estimates(report: DoseReport) -> dict[str, Estimate]:
    """SSDE (H7) of each CT acquisition whose device reported none, from the best size the
    RDSR or the patient's age allows (ssde.size_of)."""
    tables = ssde_tables()
    found = {}
    for event in report.ct_events:
        size = size_of(tables, event.water_equivalent_diameter_mm, event.effective_diameter_mm,
                       event.lateral_dimension_mm, event.ap_dimension_mm,
                       report.patient.age_years)  # fmt: skip
        if (event.ssde_mgy is not None or size is None or event.ctdivol_mgy is None
                or event.phantom is None):  # fmt: skip
            continue
        estimate = ssde(event.ctdivol_mgy, event.phantom.value, size, tables)
        if estimate is not None:
            found[event.event_uid] = estimate
    return found


def skin_map(report: DoseReport, service: FhirService, ctx: mapping.Context) -> SkinDoseMap | None:
    """Peak skin dose and its map (H8) of a fluoroscopy RDSR with beam geometry, on a phantom
    of the patient's size: the RDSR's, else the latest height and weight stored for the patient
    (from the HIS over HL7, or an earlier study); None when no event could be mapped."""
    geometry = any(e.source_to_isocenter_mm for e in report.projection_events)
    if report.kind != "projection" or report.source.kind != "rdsr" or not geometry:
        return None
    patient = report.patient
    if patient.size_m is None or patient.weight_kg is None:
        height, weight = (latest_measurement(service, report, ctx, c) for c in (HEIGHT, WEIGHT))
        patient = replace(
            patient, size_m=patient.size_m or height, weight_kg=patient.weight_kg or weight
        )
    factors = skin_dose_factors()
    own = device_geometry(service, report)
    if own is not None:  # the site's measurement of this very device comes first
        factors = replace(factors, devices=(own, *factors.devices))
    found = skin_dose_map(replace(report, patient=patient), factors)
    return found if found.events_mapped else None


def device_geometry(service: FhirService, report: DoseReport) -> TableGeometry | None:
    """The table geometry the site set on the stored Device of the report's equipment."""
    key = f"{mapping.KERMA_DEVICE_KEY}|{device_key(report.equipment)}"
    matches = service.search("Device", [("identifier", key)]).matches
    geometry = table_geometry(body_of(matches[0])) if matches else None
    if geometry is None:
        return None
    offsets, directions = geometry
    eq = report.equipment
    return TableGeometry(
        f"table geometry set on the device ({', '.join(f'{o:g}' for o in offsets)} mm)",
        (offsets[0], offsets[1], offsets[2]),
        (directions[0], directions[1], directions[2]),
        eq.manufacturer or "",
        re.escape(eq.model or ""),
    )


def latest_measurement(
    service: FhirService, report: DoseReport, ctx: mapping.Context, loinc: str
) -> float | None:
    """The report's patient's latest stored body measurement taken by the study's start (a
    read outside the write transaction: a patient not stored yet has none)."""
    ident = mapping.patient_identifier(report, ctx)
    if ident is None:
        return None
    reader = service.store
    found = patients.current(
        service.all_in(reader, "Patient", [("identifier", f"{ident[0]}|{ident[1]}")])
    )
    if found is None:
        return None
    started = report.study.started or report.irradiation_start
    until = mapping.fhir_datetime(started, ctx) if started else None
    pairs = [("subject", f"Patient/{found.rid}"), ("code", f"http://loinc.org|{loinc}")]
    taken = [o for o in map(body_of, service.all_in(reader, "Observation", pairs))
             if until is None or o.get("effectiveDateTime", "") <= until]  # fmt: skip
    latest = max(taken, key=lambda o: o.get("effectiveDateTime", ""), default=None)
    return float(latest["valueQuantity"]["value"]) if latest else None
