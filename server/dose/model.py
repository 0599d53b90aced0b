"""The neutral dose model: what a dose report says, whatever format it came in.

Readers (`server.dicom`) build these frozen records; `server.fhir.mapping` turns them into
resources. Every quantity is stored in one unit, named in the field (`ctdivol_mgy`,
`dap_gy_m2`); readers convert from what the file states. None = not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from server.dose.pulses import PulseValues

Severity = Literal["error", "warning", "information"]
ReportKind = Literal["ct", "projection"]
# where dose values were read from: an RDSR; the dose attributes of a dose screen (Philips
# "Dose Info"); a performed procedure step (MPPS); a dose screen read by OCR; image headers
SourceKind = Literal["rdsr", "dose-info", "mpps", "ocr", "image-header"]


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
    stated_age_years: float | None = None  # Patient Age (0010,1010) as the modality sent it
    size_m: float | None = None
    weight_kg: float | None = None


@dataclass(frozen=True)
class Study:
    study_uid: str
    accession: str | None = None
    study_id: str | None = None  # (0020,0010), the modality's own study number
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
    # the calling AE title the device sent from (a C-STORE to Kerma); None from files
    ae_title: str | None = None


@dataclass(frozen=True)
class Participant:
    """TID 1020 Person Participant: who authorized or administered the irradiation."""

    name: str | None = None  # DICOM PN
    role: Literal["authorizing", "administering"] | None = None
    person_id: str | None = None
    issuer: str | None = None
    organization: str | None = None


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
    kind: SourceKind = "rdsr"
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
    reconstructable_length_mm: float | None = None  # Length of Reconstructable Volume
    top_z_mm: float | None = None  # scan range, from the positions of a series' images
    bottom_z_mm: float | None = None
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
    lateral_dimension_mm: float | None = None  # measured on the patient's images (113931)
    ap_dimension_mm: float | None = None  # (113932)
    effective_diameter_mm: float | None = None  # derived by the device (113933)
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
class XRayFilter:
    filter_type: Coded | None = None
    material: Coded | None = None
    thickness_min_mm: float | None = None
    thickness_max_mm: float | None = None


@dataclass(frozen=True)
class ProjectionEvent:
    """TID 10003, one projection X-ray irradiation event (a radiograph, a fluoro run, a view)."""

    event_uid: str
    started: datetime | None = None
    plane: Coded | None = None
    event_type: Coded | None = None
    protocol: str | None = None
    target_region: Coded | None = None
    laterality: Coded | None = None
    image_view: Coded | None = None
    patient_table_relationship: Coded | None = None
    patient_orientation: Coded | None = None
    patient_orientation_modifier: Coded | None = None
    reference_point_definition: Coded | None = None
    dap_gy_m2: float | None = None
    dose_rp_gy: float | None = None
    entrance_exposure_mgy: float | None = None
    half_value_layer_mm: float | None = None
    agd_mgy: float | None = None
    exposure_index: float | None = None
    target_exposure_index: float | None = None
    deviation_index: float | None = None
    relative_xray_exposure: float | None = None  # vendor index (0018,1405): S, EI (mbel), lgM...
    sensitivity: float | None = None  # (0018,6000)
    exposure_control_mode: str | None = None  # (0018,7060): MANUAL, AUTOMATIC
    percent_fibroglandular: float | None = None  # MG: glandularity some vendors report
    fluoro_mode: Coded | None = None
    pulse_rate_per_s: float | None = None
    number_of_pulses: float | None = None
    pulse_width_ms: float | None = None
    irradiation_duration_s: float | None = None
    kvp_kv: float | None = None
    tube_current_ma: float | None = None
    average_tube_current_ma: float | None = None
    exposure_time_ms: float | None = None
    exposure_uas: float | None = None
    focal_spot_mm: float | None = None
    anode_target: Coded | None = None
    collimated_field_area_m2: float | None = None
    collimated_field_height_mm: float | None = None
    collimated_field_width_mm: float | None = None
    grids: tuple[Coded, ...] = ()
    filters: tuple[XRayFilter, ...] = ()
    primary_angle_deg: float | None = None
    secondary_angle_deg: float | None = None
    primary_end_angle_deg: float | None = None
    secondary_end_angle_deg: float | None = None
    column_angulation_deg: float | None = None
    table_head_tilt_deg: float | None = None
    table_horizontal_rotation_deg: float | None = None
    table_cradle_tilt_deg: float | None = None
    compression_thickness_mm: float | None = None
    compression_force_n: float | None = None
    compression_pressure_kpa: float | None = None
    compression_contact_area_mm2: float | None = None
    mechanical_configuration: Coded | None = None
    source_to_detector_mm: float | None = None
    source_to_isocenter_mm: float | None = None
    source_to_reference_point_mm: float | None = None
    source_to_table_plane_mm: float | None = None
    source_to_entrance_mm: float | None = None
    grid_focal_distance_mm: float | None = None
    magnification_factor: float | None = None
    table_longitudinal_mm: float | None = None
    table_lateral_mm: float | None = None
    table_height_mm: float | None = None
    comment: str | None = None
    device: Equipment | None = None
    # quantities given once per pulse: every value (the fields above hold their summary)
    per_pulse: tuple[PulseValues, ...] = ()


@dataclass(frozen=True)
class ProjectionTotals:
    """TID 10002 + 10004/10007 for one acquisition plane (biplane systems have two)."""

    plane: Coded | None = None
    dap_total_gy_m2: float | None = None
    dose_rp_total_gy: float | None = None
    fluoro_dap_total_gy_m2: float | None = None
    fluoro_dose_rp_total_gy: float | None = None
    fluoro_time_s: float | None = None
    acquisition_dap_total_gy_m2: float | None = None
    acquisition_dose_rp_total_gy: float | None = None
    acquisition_time_s: float | None = None
    radiographic_frames: int | None = None
    reference_point_definition: Coded | None = None
    entrance_exposure_mgy: float | None = None  # MPPS (0040,8302): for the whole step


@dataclass(frozen=True)
class MammographyTotal:
    """TID 10005: accumulated average glandular dose of one breast (or both)."""

    laterality: Coded | None
    agd_mgy: float


@dataclass(frozen=True)
class DoseReport:
    """One dose report: from an RDSR, an MPPS, a dose screen or image headers."""

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
    acquisition_device_type: Coded | None = None
    projection_totals: tuple[ProjectionTotals, ...] = ()
    mammography_totals: tuple[MammographyTotal, ...] = ()
    projection_events: tuple[ProjectionEvent, ...] = ()
    participants: tuple[Participant, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    # values read by OCR: (path, e.g. "ct_events[2].dlp_mgy_cm", confidence 0..1)
    confidences: tuple[tuple[str, float], ...] = ()

    @property
    def modality(self) -> str:
        return self.equipment.modality or ("CT" if self.kind == "ct" else "DX")

    @property
    def needs_review(self) -> bool:
        """Read by OCR with doubts: kept as preliminary until someone confirms the values."""
        return self.source.kind == "ocr" and any(f.severity != "information" for f in self.findings)
