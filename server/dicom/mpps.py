"""Dose from a finished Modality Performed Procedure Step (PS3.3 C.4.13-C.4.16, PS3.4 F.7).

Devices without RDSR often send MPPS. Its Radiation Dose module gives the step's totals
(area dose product, fluoroscopy time, number of exposures, entrance dose), one item per
exposure in the Exposure Dose Sequence (kV, tube current, time) and, for CT, one item per
acquisition in the CT Exposure Sequence (CTDIvol). MPPS has no DLP attribute: some CT
scanners write it in Comments on Radiation Dose, read with mappings/dicom/mpps_comments.yaml.
Units are those of the attribute definitions: area dose product in dGy.cm2, Entrance Dose in
dGy, Entrance Dose in mGy in mGy, times in s (fluoroscopy) and ms (exposure), current in uA.
A DISCONTINUED step is read, and flagged: its values cover only what was performed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from datetime import datetime

from pydicom.dataset import Dataset

from server.dicom import header
from server.dicom.header import code_string, number, text
from server.dicom.image_header import derived_uid, filters
from server.dicom.sr import coded
from server.dicom.text import combine
from server.dose.model import (
    Coded,
    CtEvent,
    CtSource,
    CtTotals,
    DoseReport,
    Equipment,
    Finding,
    ProjectionEvent,
    ProjectionTotals,
    Source,
    Study,
)
from server.dose.units import UnitTable
from server.mappings import read_yaml

MPPS_CLASS = "1.2.840.10008.3.1.2.3.3"
FINAL_STATES = ("COMPLETED", "DISCONTINUED")
_FROM_MPPS = Coded("DCM", "113858", "MPPS Content")
_SINGLE_PLANE = Coded("DCM", "113622", "Single Plane")
_FLUORO = Coded("SCT", "44491008", "Fluoroscopy")
_ACQUISITION = Coded("DCM", "113611", "Stationary Acquisition")
_PULSE_MODES = {
    "CONTINUOUS": Coded("DCM", "113630", "Continuous"),
    "PULSED": Coded("DCM", "113631", "Pulsed"),
}


def mpps_report(ds: Dataset, units: UnitTable) -> DoseReport | str:
    """The dose report of a finished step, or why there is none; ValueError when the step
    names no study (it cannot be placed: quarantine keeps it)."""
    status = text(ds, "PerformedProcedureStepStatus")
    if status not in FINAL_STATES:
        return (
            f"MPPS in state {status or 'unknown'}: only COMPLETED or DISCONTINUED steps report dose"
        )
    scheduled = ds.get("ScheduledStepAttributesSequence") or [Dataset()]
    study_uid = str(scheduled[0].get("StudyInstanceUID", "") or "")
    if not study_uid:
        raise ValueError("MPPS without a Study Instance UID in its Scheduled Step Attributes")
    modality = code_string(ds, "Modality") or ""
    started = combine(
        text(ds, "PerformedProcedureStepStartDate"), text(ds, "PerformedProcedureStepStartTime")
    )
    ended = combine(
        text(ds, "PerformedProcedureStepEndDate"), text(ds, "PerformedProcedureStepEndTime")
    )
    findings = []
    if status == "DISCONTINUED":
        findings.append(
            Finding(
                "(0040,0252)",
                "warning",
                "mpps-discontinued",
                "procedure step DISCONTINUED: the values cover only what was performed",
            )
        )
    base = DoseReport(
        kind="ct" if modality == "CT" else "projection",
        source=_source(ds, modality, ended or started),
        patient=header.patient(ds, started.date() if started else None),
        study=_study(ds, scheduled[0], study_uid, started),
        equipment=_equipment(ds, modality),
        irradiation_start=started,
        irradiation_end=ended,
        findings=tuple(findings),
    )
    if modality == "CT":
        return _ct(ds, base, units)
    return _projection(ds, base, units)


def _source(ds: Dataset, modality: str, when: datetime | None) -> Source:
    series = ds.get("PerformedSeriesSequence") or [Dataset()]
    return Source(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        sop_class_uid=MPPS_CLASS,
        series_uid=text(series[0], "SeriesInstanceUID"),
        series_description=text(series[0], "SeriesDescription"),
        modality=modality,
        kind="mpps",
        content_datetime=when,
        information_source=_FROM_MPPS,
    )


def _study(ds: Dataset, scheduled: Dataset, study_uid: str, started: datetime | None) -> Study:
    operators = header.many(ds.get("OperatorsName")) or [
        o
        for s in ds.get("PerformedSeriesSequence", [])
        for o in header.many(s.get("OperatorsName"))
    ]
    return Study(
        study_uid=study_uid,
        accession=text(scheduled, "AccessionNumber"),
        study_id=text(ds, "StudyID"),
        started=started,
        description=text(ds, "PerformedProcedureStepDescription")
        or text(ds, "PerformedProcedureTypeDescription"),
        requested_procedure=text(scheduled, "RequestedProcedureDescription"),
        referring_physician=text(ds, "ReferringPhysicianName"),
        performing_physician=next(
            (
                text(s, "PerformingPhysicianName")
                for s in ds.get("PerformedSeriesSequence", [])
                if text(s, "PerformingPhysicianName")
            ),
            None,
        ),
        operators=tuple(str(o) for o in operators if str(o)),
    )


def _equipment(ds: Dataset, modality: str) -> Equipment:
    # an MPPS names the station, not the device: its name, or its AE title, identifies it
    return Equipment(
        station_name=text(ds, "PerformedStationName") or text(ds, "PerformedStationAETitle"),
        institution=text(ds, "PerformedLocation"),
        modality=modality or None,
    )


def _projection(ds: Dataset, base: DoseReport, units: UnitTable) -> DoseReport:
    exposures = ds.get("ExposureDoseSequence") or []
    totals = ProjectionTotals(
        plane=_SINGLE_PLANE,
        dap_total_gy_m2=_converted(ds, "ImageAndFluoroscopyAreaDoseProduct", "dGy.cm2", units),
        fluoro_time_s=number(ds, "TotalTimeOfFluoroscopy"),
        radiographic_frames=int(n) if (n := number(ds, "TotalNumberOfExposures")) else None,
        entrance_exposure_mgy=number(ds, "EntranceDoseInmGy")
        or _converted(ds, "EntranceDose", "dGy", units, "mGy"),
    )
    events = tuple(_exposure(item, i, ds, base, units) for i, item in enumerate(exposures, start=1))
    return replace(
        base,
        procedure_reported=Coded("DCM", "113704", "Projection X-Ray"),
        projection_totals=(totals,),
        projection_events=events,
    )


def _exposure(
    item: Dataset, index: int, ds: Dataset, base: DoseReport, units: UnitTable
) -> ProjectionEvent:
    mode = (text(item, "RadiationMode") or "").upper()
    current_ma = _converted(item, "XRayTubeCurrentInuA", "uA", units, "mA")
    return ProjectionEvent(
        event_uid=derived_uid("mpps-exposure", f"{base.source.sop_instance_uid}|{index}"),
        started=base.irradiation_start,
        plane=_SINGLE_PLANE,
        event_type=_FLUORO if mode == "CONTINUOUS" else _ACQUISITION if not mode else None,
        fluoro_mode=_PULSE_MODES.get(mode),
        kvp_kv=number(item, "KVP"),
        # the standard: "an average in the case of fluoroscopy"
        tube_current_ma=None if mode else current_ma,
        average_tube_current_ma=current_ma if mode else None,
        exposure_time_ms=number(item, "ExposureTime"),
        filters=filters(item),
        source_to_detector_mm=number(ds, "DistanceSourceToDetector"),
        source_to_entrance_mm=number(ds, "DistanceSourceToEntrance"),
        comment=text(item, "CommentsOnRadiationDose"),
    )


def _ct(ds: Dataset, base: DoseReport, units: UnitTable) -> DoseReport:
    acquisitions = ds.get("CTExposureSequence") or []
    events = tuple(_ct_event(item, i, base) for i, item in enumerate(acquisitions, start=1))
    dlp = _comment_value(text(ds, "CommentsOnRadiationDose"), _comment_patterns(), units)
    return replace(
        base,
        procedure_reported=Coded("SCT", "77477000", "Computed Tomography X-Ray"),
        ct_totals=CtTotals(total_events=len(events) or None, dlp_total_mgy_cm=dlp),
        ct_events=events,
    )


def _ct_event(item: Dataset, index: int, base: DoseReport) -> CtEvent:
    phantom = item.get("CTDIPhantomTypeCodeSequence")
    ms = number(item, "ExposureTimeInms")
    return CtEvent(
        event_uid=derived_uid("mpps-ct", f"{base.source.sop_instance_uid}|{index}"),
        started=base.irradiation_start,
        exposure_time_s=ms / 1000 if ms is not None else None,
        sources=(CtSource(tube_current_ma=number(item, "XRayTubeCurrentInmA")),),
        ctdivol_mgy=number(item, "CTDIvol"),
        phantom=coded(phantom[0]) if phantom else None,
        modulation_type=text(item, "ExposureModulationType"),
    )


@dataclass(frozen=True)
class _Patterns:
    unit: str
    patterns: tuple[re.Pattern[str], ...]


@functools.cache
def _comment_patterns() -> _Patterns:
    table = read_yaml("dicom/mpps_comments.yaml")["dlp_total"]
    return _Patterns(table["unit"], tuple(re.compile(p, re.IGNORECASE) for p in table["patterns"]))


def _comment_value(comment: str | None, table: _Patterns, units: UnitTable) -> float | None:
    for pattern in table.patterns if comment else ():
        found = pattern.search(comment or "")
        if found:
            return units.convert(float(found["value"].replace(",", ".")), table.unit, "mGy.cm")
    return None


def _converted(
    ds: Dataset, keyword: str, unit: str, units: UnitTable, target: str = "Gy.m2"
) -> float | None:
    value = number(ds, keyword)
    return None if value is None else units.convert(value, unit, target)
