"""The neutral dose model: what a dose report says, whatever format it came in.

Readers (`server.dicom`) build these frozen records; `server.fhir.mapping` turns them into
resources. Every quantity is stored in one unit, named in the field (`ctdivol_mgy`,
`dap_gy_m2`); readers convert from what the file states. None = not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Severity = Literal["error", "warning", "information"]
ReportKind = Literal["ct", "projection"]


@dataclass(frozen=True)
class Coded:
    """A coded concept: (scheme, value) identify it, meaning is for people."""

    scheme: str
    value: str
    meaning: str = ""


@dataclass(frozen=True)
class Finding:
    """A problem noticed while reading or checking: where, how bad, what (never raised)."""

    path: str
    severity: Severity
    code: str
    message: str


@dataclass(frozen=True)
class Patient:
    patient_id: str | None = None
    issuer: str | None = None
    name: str | None = None  # DICOM PN, "Family^Given^Middle^Prefix^Suffix"
    birth_date: date | None = None
    sex: Literal["M", "F", "O"] | None = None
    age_years: float | None = None  # at the study, from (0010,1010) or birth date
    size_m: float | None = None
    weight_kg: float | None = None


@dataclass(frozen=True)
class Study:
    study_uid: str
    accession: str | None = None
    started: datetime | None = None
    description: str | None = None
    requested_procedure: str | None = None
    referring_physician: str | None = None
    performing_physician: str | None = None
    reading_physician: str | None = None
    operators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Equipment:
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    station_name: str | None = None
    software_versions: tuple[str, ...] = ()
    device_uid: str | None = None
    institution: str | None = None
    department: str | None = None
    modality: str | None = None  # DICOM modality of the irradiating device: CT, DX, MG, RF, XA


@dataclass(frozen=True)
class Source:
    """The object a report was read from."""

    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    modality: str | None = None  # of the object itself (SR for an RDSR)
    template: str | None = None  # "10011", "10001", or None for image headers
    kind: Literal["rdsr", "image-header"] = "rdsr"
    content_datetime: datetime | None = None
    information_source: Coded | None = None  # 113854 Source of Dose Information


@dataclass(frozen=True)
class CtSource:
    """One X-ray tube of a CT acquisition (dual-source scanners have two)."""

    identification: str | None = None
    kvp_kv: float | None = None
    max_tube_current_ma: float | None = None
    tube_current_ma: float | None = None
    exposure_time_per_rotation_s: float | None = None
    filter_al_mm: float | None = None


@dataclass(frozen=True)
class DoseCheck:
    """TID 10015: an alert or notification value the scanner checked, and why the user went on."""

    kind: Literal["alert", "notification"]
    dlp_mgy_cm: float | None = None
    ctdivol_mgy: float | None = None
    accumulated_dlp_forward_mgy_cm: float | None = None
    accumulated_ctdivol_forward_mgy: float | None = None
    dlp_forward_mgy_cm: float | None = None
    ctdivol_forward_mgy: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CtEvent:
    """TID 10013, one CT acquisition."""

    event_uid: str
    started: datetime | None = None
    protocol: str | None = None
    target_region: Coded | None = None
    acquisition_type: Coded | None = None
    procedure_context: Coded | None = None
    exposure_time_s: float | None = None
    scanning_length_mm: float | None = None
    exposed_range_mm: float | None = None
    single_collimation_mm: float | None = None
    total_collimation_mm: float | None = None
    pitch: float | None = None
    number_of_sources: int | None = None
    sources: tuple[CtSource, ...] = ()
    ctdivol_mgy: float | None = None
    dlp_mgy_cm: float | None = None
    phantom: Coded | None = None
    ctdi_freeair_mgy: float | None = None
    effective_dose_msv: float | None = None
    ssde_mgy: float | None = None
    water_equivalent_diameter_mm: float | None = None
    modulation_type: str | None = None
    comment: str | None = None
    dose_checks: tuple[DoseCheck, ...] = ()
    device: Equipment | None = None  # TID 1021 irradiating device, when the event names one

    @property
    def is_localizer(self) -> bool:
        """Constant angle acquisitions (113805) are scout views."""
        return self.acquisition_type is not None and self.acquisition_type.value == "113805"


@dataclass(frozen=True)
class CtTotals:
    """TID 10012 CT Accumulated Dose Data."""

    total_events: int | None = None
    dlp_total_mgy_cm: float | None = None
    effective_dose_total_msv: float | None = None


@dataclass(frozen=True)
class DoseReport:
    """One dose report: a CT or projection X-ray RDSR, or what image headers say."""

    kind: ReportKind
    source: Source
    patient: Patient
    study: Study
    equipment: Equipment
    procedure_reported: Coded | None = None
    irradiation_start: datetime | None = None
    irradiation_end: datetime | None = None
    ct_totals: CtTotals | None = None
    ct_events: tuple[CtEvent, ...] = ()
    authorizing_person: str | None = None
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def modality(self) -> str:
        return self.equipment.modality or ("CT" if self.kind == "ct" else "DX")
