"""Dose model -> FHIR R4 resources, per `fhir-dose-mapping.md` (HL7 Radiation Dose Summary IG).

Pure functions: they build resource dicts from a `DoseReport` and from what is already
stored for the study (passed in); `server.ingest` decides what to create or update.
Resources built here are not re-validated at ingest; `tests/fhir/test_mapping.py` validates
every resource this module builds for the whole corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from server.dose.alerts import AlertRule
from server.dose.classify import Classified, Exam, Rules
from server.dose.drl import DoseLevel, applicable
from server.dose.model import (
    Coded,
    CtEvent,
    DoseReport,
    Equipment,
    MammographyTotal,
    Patient,
    ProjectionEvent,
    ProjectionTotals,
)
from server.dose.units import UnitTable
from server.fhir.values import date_range
from server.mappings import classification_rules, unit_table

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
IDENTIFIER_TYPE = "http://hl7.org/fhir/uv/radiation-dose-summary/CodeSystem/dicom-identifier-type"
RDS_PROFILE = (
    "http://hl7.org/fhir/uv/radiation-dose-summary/StructureDefinition/radiation-dose-summary"
)
DEVICE_PROFILE = "http://hl7.org/fhir/uv/radiation-dose-summary/StructureDefinition/modality-device"
KERMA_DEVICE_KEY = "urn:kerma:device-key"
SUMMARY_CODE = {
    "system": LOINC,
    "code": "73569-6",
    "display": "Radiation exposure and protection information",
}
EVENT_CODE = {"system": DCM, "code": "113852", "display": "Irradiation Event"}
_SCHEMES = {"DCM": DCM, "SCT": SCT, "LN": LOINC, "UCUM": UCUM}
_GENDER = {"M": "male", "F": "female", "O": "other"}


@dataclass(frozen=True)
class Context:
    """Site settings and tables the mapping needs."""

    timezone: tzinfo = UTC  # for DICOM times that carry no offset
    patient_id_system: str = "urn:kerma:patient-id"
    # the issuer of local patient IDs, for objects that name none (0010,0021 empty)
    patient_id_issuer: str = ""
    units: UnitTable = field(default_factory=unit_table)
    rules: Rules = field(default_factory=classification_rules)
    # the DRL sets the site compares with, and the procedures each level applies to
    levels: tuple[DoseLevel, ...] = ()
    level_procedures: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    alert_rules: tuple[AlertRule, ...] = ()  # the site's significant-event rules

    def applicable_levels(
        self, procedure: str, age_years: float | None, weight_kg: float | None, kind: str = "DRL"
    ) -> list[DoseLevel]:
        """The site's levels of a kind that apply to a procedure code and a patient (none for
        no procedure)."""
        if not procedure:
            return []
        return applicable(
            list(self.levels), self.level_procedures, procedure, age_years, weight_kg, kind
        )

    def convert(self, value: float | None, source: str, target: str) -> float | None:
        return None if value is None else self.units.convert(value, source, target)


def uid_identifier(uid: str, id_type: str | None = None) -> dict[str, Any]:
    identifier: dict[str, Any] = {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
    if id_type:
        identifier["type"] = {"coding": [{"system": IDENTIFIER_TYPE, "code": id_type}]}
    return identifier


def patient_identifier(report: DoseReport, ctx: Context) -> tuple[str, str] | None:
    """(system, value): the issuer (the file's, else the site's) is part of the system, as
    HL7's assigning authority is: the same patient arriving by ADT is found by it."""
    if not report.patient.patient_id:
        return None
    issuer = report.patient.issuer or ctx.patient_id_issuer
    system = ctx.patient_id_system + (f":{issuer}" if issuer else "")
    return system, report.patient.patient_id


def patient(report: DoseReport, ctx: Context) -> dict[str, Any]:
    p = report.patient
    resource: dict[str, Any] = {"resourceType": "Patient"}
    ident = patient_identifier(report, ctx)
    if ident:
        identifier: dict[str, Any] = {"system": ident[0], "value": ident[1]}
        issuer = p.issuer or ctx.patient_id_issuer
        if issuer:
            identifier["assigner"] = {"display": issuer}
        resource["identifier"] = [identifier]
    if p.name:
        resource["name"] = [_human_name(p.name)]
    if p.sex:
        resource["gender"] = _GENDER[p.sex]
    if p.birth_date:
        resource["birthDate"] = p.birth_date.isoformat()
    return resource


def device_key(equipment: Equipment) -> str:
    """Kerma's identity of a physical modality: the same scanner is found again by it."""
    parts = [
        equipment.manufacturer,
        equipment.model,
        equipment.serial_number or equipment.station_name or equipment.device_uid,
    ]
    return "|".join((part or "").strip().upper() for part in parts)


def device(eq: Equipment, modality: str) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [{"system": KERMA_DEVICE_KEY, "value": device_key(eq)}]
    if eq.serial_number:
        identifiers.append(
            {"type": {"coding": [{"system": V2_0203, "code": "SNO"}]}, "value": eq.serial_number}
        )
    if eq.device_uid:
        identifiers.append({**uid_identifier(eq.device_uid, "device-uid")})
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "meta": {"profile": [DEVICE_PROFILE]},
        "identifier": identifiers,
        "status": "active",
        "type": {"coding": [{"system": DCM, "code": modality}]},
    }
    if eq.manufacturer:
        resource["manufacturer"] = eq.manufacturer
    names = [
        ("manufacturer-name", eq.manufacturer),
        ("model-name", eq.model),
        ("user-friendly-name", eq.station_name),
    ]
    device_names = [{"name": name, "type": kind} for kind, name in names if name]
    if device_names:
        resource["deviceName"] = device_names
    if eq.model:
        resource["modelNumber"] = eq.model
    if eq.serial_number:
        resource["serialNumber"] = eq.serial_number
    if eq.software_versions:
        resource["version"] = [{"value": v} for v in eq.software_versions]
    if eq.institution:
        resource["owner"] = {"display": eq.institution}
    if eq.department:
        resource["location"] = {"display": eq.department}
    return resource


def device_identity(device: dict[str, Any]) -> dict[str, str]:
    """What a device table shows of a Device: name, type, manufacturer, model, station name,
    serial number, software versions, department."""
    names = {n.get("type"): n.get("name") for n in device.get("deviceName") or []}
    return {
        "name": device_label(device),
        "type": str(((device.get("type") or {}).get("coding") or [{}])[0].get("code", "")),
        "manufacturer": str(device.get("manufacturer", "")),
        "model": str(device.get("modelNumber", "")),
        "station_name": str(names.get("user-friendly-name") or ""),
        "serial_number": str(device.get("serialNumber", "")),
        "software_versions": "; ".join(str(v.get("value")) for v in device.get("version") or []),
        "department": str((device.get("location") or {}).get("display", "")),
    }


def device_label(device: dict[str, Any]) -> str:
    """How people name a device: manufacturer, model and station name."""
    names = {n.get("type"): n.get("name") for n in device.get("deviceName") or []}
    kinds = ("manufacturer-name", "model-name", "user-friendly-name")
    return " ".join(str(names[k]) for k in kinds if names.get(k))


def imaging_study(
    report: DoseReport, ctx: Context, patient_ref: str | None, existing: dict[str, Any] | None
) -> dict[str, Any]:
    """The study, with this object's series and instance added to what is stored."""
    study = report.study
    resource: dict[str, Any] = (
        dict(existing) if existing else {"resourceType": "ImagingStudy", "status": "available"}
    )
    identifiers = [uid_identifier(study.study_uid)]
    if study.accession:
        identifiers.append(
            {"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]}, "value": study.accession}
        )
    if study.study_id:
        identifiers.append(
            {
                "use": "secondary",
                "type": {"text": "DICOM Study ID (0020,0010)"},
                "value": study.study_id,
            }
        )
    resource["identifier"] = _merge_by_value(resource.get("identifier", []), identifiers)
    if patient_ref:
        resource["subject"] = {"reference": patient_ref}
    elif "subject" not in resource:
        resource["subject"] = {"display": "unknown patient"}
    started = study.started or report.irradiation_start
    if started and "started" not in resource:
        resource["started"] = fhir_datetime(started, ctx)
    if study.description:
        resource["description"] = study.description
    _classify(resource, report, ctx)
    referrer, reader = person(study.referring_physician), person(study.reading_physician)
    if referrer:
        resource["referrer"] = {"display": referrer}
    if reader:
        resource["interpreter"] = [{"display": reader}]
    src = report.source
    modalities = {m["code"] for m in resource.get("modality", [])} | {
        report.modality,
        src.modality or report.modality,
    }
    resource["modality"] = [{"system": DCM, "code": m} for m in sorted(modalities)]
    put_extension(resource, PATIENT_AT_MODALITY_URL, patient_at_modality(report.patient))
    resource["series"] = _with_instance(resource.get("series", []), report)
    resource["numberOfSeries"] = len(resource["series"])
    resource["numberOfInstances"] = sum(len(s.get("instance", [])) for s in resource["series"])
    return resource


def exam_of(report: DoseReport) -> Exam:
    """The words of a report that classification reads."""
    protocols = [e.protocol for e in report.ct_events] + [
        e.protocol for e in report.projection_events
    ]
    return Exam(
        modality=report.modality,
        requested_procedure=report.study.requested_procedure or "",
        description=report.study.description or "",
        protocols=tuple(dict.fromkeys(p for p in protocols if p)),
        events=len(protocols),
    )


def _classify(resource: dict[str, Any], report: DoseReport, ctx: Context) -> None:
    found = ctx.rules.classify(exam_of(report))
    apply_classification(resource, found, report.study.requested_procedure, ctx.rules.version)


def apply_classification(
    resource: dict[str, Any], found: Classified | None, text: str | None, version: int
) -> None:
    """procedureCode: the standard procedure the rules gave (with the requested procedure as
    its text), and which rule of which version decided, or that none matched (review list)."""
    code: dict[str, Any] = {}
    if found is not None and found.procedure is not None:
        p = found.procedure
        code = {"coding": [{"system": p.system, "code": p.code, "display": p.name}]}
    if text:
        code["text"] = text
    if code:
        resource["procedureCode"] = [code]
    else:
        resource.pop("procedureCode", None)
    decision = [
        {"url": "rule", "valueString": found.rule if found else "unmatched"},
        {"url": "version", "valueInteger": version},
    ]
    put_extension(resource, CLASSIFICATION_URL, {"url": CLASSIFICATION_URL, "extension": decision})


def extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension", []) if e["url"] == url), None)


def put_extension(resource: dict[str, Any], url: str, value: dict[str, Any] | None) -> None:
    """Replace the resource's extension of that url with `value` (None: remove it)."""
    kept = [e for e in resource.get("extension", []) if e["url"] != url]
    kept += [value] if value else []
    if kept:
        resource["extension"] = kept
    else:
        resource.pop("extension", None)


def classifying_rule(study: dict[str, Any]) -> str:
    """The id of the rule that classified a stored study, or "unmatched"."""
    found = extension(study, CLASSIFICATION_URL)
    return str(found["extension"][0]["valueString"]) if found else "unmatched"


@dataclass(frozen=True)
class Decision:
    """How a stored study was classified: the rule, and the procedure's code and region."""

    rule: str
    code: str = ""
    region: str = ""


def classification_of(study: dict[str, Any], ctx: Context) -> Decision:
    rule = classifying_rule(study)
    coding = ((study.get("procedureCode") or [{}])[0].get("coding") or [{}])[0]
    code = str(coding.get("code", ""))
    procedure = ctx.rules.procedure(code) if code else None
    return Decision(rule, code, procedure.region if procedure else "")


def patient_at_modality(p: Patient) -> dict[str, Any] | None:
    """Who the modality said the patient was (name, birth date, sex as keyed in there): the
    reconciliation compares it with the Patient the HIS maintains."""
    parts: list[dict[str, Any]] = []
    if p.name:
        parts.append({"url": "name", "valueString": p.name})
    if p.birth_date:
        parts.append({"url": "birthDate", "valueDate": p.birth_date.isoformat()})
    if p.sex:
        parts.append({"url": "gender", "valueCode": _GENDER[p.sex]})
    return {"url": PATIENT_AT_MODALITY_URL, "extension": parts} if parts else None


def _with_instance(series: list[dict[str, Any]], report: DoseReport) -> list[dict[str, Any]]:
    src = report.source
    series_uid = src.series_uid or src.sop_instance_uid
    instance = {
        "uid": src.sop_instance_uid,
        "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{src.sop_class_uid}"},
    }
    out = [dict(s) for s in series]
    for s in out:
        if s["uid"] == series_uid:
            if all(i["uid"] != src.sop_instance_uid for i in s.get("instance", [])):
                s["instance"] = [*s.get("instance", []), instance]
            return out
    new: dict[str, Any] = {
        "uid": series_uid,
        "modality": {"system": DCM, "code": src.modality or report.modality},
    }
    performers = [("performing physician", person(report.study.performing_physician))]
    performers += [("operator", person(name)) for name in report.study.operators]
    if any(name for _, name in performers):
        new["performer"] = [
            {"function": {"text": role}, "actor": {"display": name}}
            for role, name in performers
            if name
        ]
    if src.series_number is not None:
        new["number"] = src.series_number
    if src.series_description:
        new["description"] = src.series_description
    new["instance"] = [instance]
    return [*out, new]


def body_measurements(
    report: DoseReport, ctx: Context, patient_ref: str, study_ref: str
) -> list[dict[str, Any]]:
    """Patient size and weight at the study (0010,1020 / 0010,1030): they size the skin dose
    phantom of later studies whose RDSR has none."""
    p = report.patient
    when = report.study.started or report.irradiation_start
    out = []
    for code, display, value, unit in (
        ("8302-2", "Body height", p.size_m, "m"),
        ("29463-7", "Body weight", p.weight_kg, "kg"),
    ):
        if value is None:
            continue
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": patient_ref},
            "partOf": [{"reference": study_ref}],
            "valueQuantity": {"value": _number(value), "unit": unit, "system": UCUM, "code": unit},
        }
        if when:
            obs["effectiveDateTime"] = fhir_datetime(when, ctx)
        out.append(obs)
    return out


@dataclass(frozen=True)
class Refs:
    patient: str | None
    device: str
    study: str


def ct_event(event: CtEvent, report: DoseReport, ctx: Context, refs: Refs) -> dict[str, Any]:
    """One CT acquisition (TID 10013) as an Irradiation Event Observation."""
    resource = _event_base(
        report.source.kind,
        event.event_uid,
        event.started or report.irradiation_start or report.study.started,
        ctx,
        refs,
    )
    if event.target_region:
        resource["bodySite"] = codeable(event.target_region)
    if event.acquisition_type or event.protocol:
        method = codeable(event.acquisition_type) if event.acquisition_type else {}
        if event.protocol:
            method["text"] = event.protocol
        resource["method"] = method
    components = [
        _code_component("113820", "CT Acquisition Type", event.acquisition_type),
        _text_component("125203", "Acquisition Protocol", event.protocol),
        _code_component("408730004", "Procedure context", event.procedure_context, scheme=SCT),
        _quantity("113830", "Mean CTDIvol", event.ctdivol_mgy, "mGy"),
        _quantity("113838", "DLP", event.dlp_mgy_cm, "mGy.cm"),
        _code_component("113835", "CTDIw Phantom Type", event.phantom),
        _quantity("113837", "Mean CTDIfreeair", event.ctdi_freeair_mgy, "mGy"),
        _quantity("113839", "Effective Dose", event.effective_dose_msv, "mSv"),
        _quantity("113930", "Size Specific Dose Estimation", event.ssde_mgy, "mGy"),
        _quantity("113980", "Water Equivalent Diameter", event.water_equivalent_diameter_mm, "mm"),
        _quantity("113931", "Measured Lateral Dimension", event.lateral_dimension_mm, "mm"),
        _quantity("113932", "Measured AP Dimension", event.ap_dimension_mm, "mm"),
        _quantity("113933", "Derived Effective Diameter", event.effective_diameter_mm, "mm"),
        _quantity("113824", "Exposure Time", event.exposure_time_s, "s"),
        _quantity("113825", "Scanning Length", event.scanning_length_mm, "mm"),
        _quantity("113899", "Exposed Range", event.exposed_range_mm, "mm"),
        _quantity("113897", "Top Z Location of Scanning Length", event.top_z_mm, "mm"),
        _quantity("113898", "Bottom Z Location of Scanning Length", event.bottom_z_mm, "mm"),
        _quantity("113826", "Nominal Single Collimation Width", event.single_collimation_mm, "mm"),
        _quantity("113827", "Nominal Total Collimation Width", event.total_collimation_mm, "mm"),
        _quantity("113828", "Pitch Factor", event.pitch, "{ratio}"),
        _integer("113823", "Number of X-Ray Sources", event.number_of_sources),
        _text_component("113842", "X-Ray Modulation Type", event.modulation_type),
    ]
    for source in event.sources:
        label = f" (source {source.identification})" if source.identification else ""
        components += [
            _quantity("113733", "KVP" + label, source.kvp_kv, "kV"),
            _quantity(
                "113833", "Maximum X-Ray Tube Current" + label, source.max_tube_current_ma, "mA"
            ),
            _quantity("113734", "X-Ray Tube Current" + label, source.tube_current_ma, "mA"),
            _quantity(
                "113834",
                "Exposure Time per Rotation" + label,
                source.exposure_time_per_rotation_s,
                "s",
            ),
            _quantity(
                "113821", "X-Ray Filter Aluminum Equivalent" + label, source.filter_al_mm, "mm"
            ),
        ]
    for check in event.dose_checks:
        prefix = "Alert" if check.kind == "alert" else "Notification"
        dlp_code, ctdi_code = (
            ("113903", "113904") if check.kind == "alert" else ("113911", "113912")
        )
        components += [
            _quantity(dlp_code, f"DLP {prefix} Value", check.dlp_mgy_cm, "mGy.cm"),
            _quantity(ctdi_code, f"CTDIvol {prefix} Value", check.ctdivol_mgy, "mGy"),
            _quantity(
                "113905",
                "Accumulated DLP Forward Estimate",
                check.accumulated_dlp_forward_mgy_cm,
                "mGy.cm",
            ),
            _quantity(
                "113906",
                "Accumulated CTDIvol Forward Estimate",
                check.accumulated_ctdivol_forward_mgy,
                "mGy",
            ),
            _quantity("113913", "DLP Forward Estimate", check.dlp_forward_mgy_cm, "mGy.cm"),
            _quantity("113914", "CTDIvol Forward Estimate", check.ctdivol_forward_mgy, "mGy"),
            _text_component("113907", "Reason for Proceeding", check.reason),
        ]
    resource["component"] = [c for c in components if c is not None]
    if event.comment:
        resource["note"] = [{"text": event.comment}]
    return resource


# (model field, DCM code, display, UCUM unit as emitted) of a projection event's numbers
_PROJECTION_NUMBERS = (
    ("dap_gy_m2", "122130", "Dose Area Product", "Gy.m2"),
    ("dose_rp_gy", "113738", "Dose (RP)", "Gy"),
    ("entrance_exposure_mgy", "111636", "Entrance Exposure at RP", "mGy"),
    ("half_value_layer_mm", "111634", "Half Value Layer", "mm"),
    ("agd_mgy", "111631", "Average Glandular Dose", "mGy"),
    ("exposure_index", "113845", "Exposure Index", "1"),
    ("target_exposure_index", "113846", "Target Exposure Index", "1"),
    ("deviation_index", "113847", "Deviation Index", "1"),
    ("pulse_rate_per_s", "113791", "Pulse Rate", "{pulse}/s"),
    ("number_of_pulses", "113768", "Number of Pulses", "1"),
    ("pulse_width_ms", "113793", "Pulse Width", "ms"),
    ("irradiation_duration_s", "113742", "Irradiation Duration", "s"),
    ("kvp_kv", "113733", "KVP", "kV"),
    ("tube_current_ma", "113734", "X-Ray Tube Current", "mA"),
    ("average_tube_current_ma", "113767", "Average X-Ray Tube Current", "mA"),
    ("exposure_time_ms", "113824", "Exposure Time", "ms"),
    ("exposure_uas", "113736", "Exposure", "uA.s"),
    ("focal_spot_mm", "113766", "Focal Spot Size", "mm"),
    ("collimated_field_area_m2", "113790", "Collimated Field Area", "m2"),
    ("collimated_field_height_mm", "113788", "Collimated Field Height", "mm"),
    ("collimated_field_width_mm", "113789", "Collimated Field Width", "mm"),
    ("primary_angle_deg", "112011", "Positioner Primary Angle", "deg"),
    ("secondary_angle_deg", "112012", "Positioner Secondary Angle", "deg"),
    ("primary_end_angle_deg", "113739", "Positioner Primary End Angle", "deg"),
    ("secondary_end_angle_deg", "113740", "Positioner Secondary End Angle", "deg"),
    ("column_angulation_deg", "113770", "Column Angulation", "deg"),
    ("table_head_tilt_deg", "113754", "Table Head Tilt Angle", "deg"),
    ("table_horizontal_rotation_deg", "113755", "Table Horizontal Rotation Angle", "deg"),
    ("table_cradle_tilt_deg", "113756", "Table Cradle Tilt Angle", "deg"),
    ("compression_thickness_mm", "111633", "Compression Thickness", "mm"),
    ("compression_force_n", "111647", "Compression Force", "N"),
    ("compression_pressure_kpa", "111648", "Compression Pressure", "kPa"),
    ("compression_contact_area_mm2", "111649", "Compression Contact Area", "mm2"),
    ("source_to_detector_mm", "113750", "Distance Source to Detector", "mm"),
    ("source_to_isocenter_mm", "113748", "Distance Source to Isocenter", "mm"),
    ("source_to_reference_point_mm", "113737", "Distance Source to Reference Point", "mm"),
    ("source_to_table_plane_mm", "113792", "Distance Source to Table Plane", "mm"),
    ("percent_fibroglandular", "111046", "Percent Fibroglandular Tissue", "%"),
    ("table_longitudinal_mm", "113751", "Table Longitudinal Position", "mm"),
    ("table_lateral_mm", "113752", "Table Lateral Position", "mm"),
    ("table_height_mm", "113753", "Table Height Position", "mm"),
)
# Image attributes with no SR concept: coded by their DICOM keyword
DICOM_ATTRIBUTE = "urn:kerma:dicom-attribute"
_HEADER_ONLY_NUMBERS = (
    ("relative_xray_exposure", "RelativeXRayExposure", "Relative X-Ray Exposure (0018,1405)", "1"),
    ("sensitivity", "Sensitivity", "Sensitivity (0018,6000)", "1"),
    (
        "source_to_entrance_mm",
        "DistanceSourceToEntrance",
        "Distance Source to Entrance (0040,0306)",
        "mm",
    ),
    ("grid_focal_distance_mm", "GridFocalDistance", "Grid Focal Distance (0018,704C)", "mm"),
    (
        "magnification_factor",
        "EstimatedRadiographicMagnificationFactor",
        "Estimated Radiographic Magnification Factor (0018,1114)",
        "{ratio}",
    ),
)
_PROJECTION_CODES = (
    ("event_type", "113721", "Irradiation Event Type"),
    ("plane", "113764", "Acquisition Plane"),
    ("reference_point_definition", "113780", "Reference Point Definition"),
    ("laterality", "272741003", "Laterality"),
    ("image_view", "111031", "Image View"),
    ("patient_table_relationship", "113745", "Patient Table Relationship"),
    ("patient_orientation", "113743", "Patient Orientation"),
    ("patient_orientation_modifier", "113744", "Patient Orientation Modifier"),
    ("fluoro_mode", "113732", "Fluoro Mode"),
    ("anode_target", "111632", "Anode Target Material"),
    ("mechanical_configuration", "113956", "CR/DR Mechanical Configuration"),
)


def projection_event(
    event: ProjectionEvent, report: DoseReport, ctx: Context, refs: Refs
) -> dict[str, Any]:
    """One projection X-ray irradiation event (TID 10003) as an Irradiation Event Observation."""
    resource = _event_base(
        report.source.kind,
        event.event_uid,
        event.started or report.irradiation_start or report.study.started,
        ctx,
        refs,
    )
    if event.target_region:
        resource["bodySite"] = codeable(event.target_region)
    if event.protocol:
        resource["method"] = {"text": event.protocol}
    components: list[dict[str, Any] | None] = [
        _text_component("125203", "Acquisition Protocol", event.protocol)
    ]
    for field_name, code, display in _PROJECTION_CODES:
        scheme = SCT if code == "272741003" else DCM
        components.append(_code_component(code, display, getattr(event, field_name), scheme=scheme))
    for field_name, code, display, unit in _PROJECTION_NUMBERS:
        components.append(_quantity(code, display, getattr(event, field_name), unit))
    components += [_code_component("111635", "X-Ray Grid", grid) for grid in event.grids]
    for field_name, keyword, display, unit in _HEADER_ONLY_NUMBERS:
        value = getattr(event, field_name)
        if value is not None:
            quantity = _quantity(keyword, display, value, unit)
            assert quantity is not None
            quantity["code"]["coding"][0]["system"] = DICOM_ATTRIBUTE
            components.append(quantity)
    for f in event.filters:
        components += [
            _code_component("113772", "X-Ray Filter Type", f.filter_type),
            _code_component("113757", "X-Ray Filter Material", f.material),
            _quantity("113758", "X-Ray Filter Thickness Minimum", f.thickness_min_mm, "mm"),
            _quantity("113773", "X-Ray Filter Thickness Maximum", f.thickness_max_mm, "mm"),
        ]
    resource["component"] = [c for c in components if c is not None]
    if event.comment:
        resource["note"] = [{"text": event.comment}]
    return resource


def projection_summary(
    report: DoseReport,
    ctx: Context,
    refs: Refs,
    events: list[dict[str, Any]],
    sop_uids: Iterable[str],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
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
    components: list[dict[str, Any] | None] = list(resource.pop("component"))
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


QUALITY_TAG = {
    "system": "https://kerma.example.org/fhir/CodeSystem/dose-quality",
    "code": "plausibility-warning",
}


def _add_findings(resource: dict[str, Any], report: DoseReport, previous: dict[str, Any]) -> None:
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


def _component_coding(resource: dict[str, Any], code: str) -> dict[str, Any] | None:
    for component in resource.get("component", []):
        if component["code"]["coding"][0]["code"] == code and "valueCodeableConcept" in component:
            codings = component["valueCodeableConcept"].get("coding")
            return codings[0] if codings else None
    return None


SOURCE_TAG = "https://kerma.example.org/fhir/CodeSystem/dose-source"
PATIENT_AT_MODALITY_URL = "https://kerma.example.org/fhir/StructureDefinition/patient-at-modality"
CLASSIFICATION_URL = "https://kerma.example.org/fhir/StructureDefinition/classification"


def source_tag(kind: str) -> dict[str, Any]:
    """meta.tag saying where a dose Observation came from (SourceKind: rdsr, mpps, ocr...)."""
    return {"tag": [{"system": SOURCE_TAG, "code": kind}]}


def _event_base(
    kind: str, uid: str, when: datetime | None, ctx: Context, refs: Refs
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": source_tag(kind),
        "identifier": [uid_identifier(uid, "irradiation-event-uid")],
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
    resource.update(_subject(refs))
    if when:
        resource["effectiveDateTime"] = fhir_datetime(when, ctx)
    return resource


def _summary_base(
    report: DoseReport,
    ctx: Context,
    refs: Refs,
    events: list[dict[str, Any]],
    sop_uids: Iterable[str],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """What every Radiation Dose Summary carries, whatever the modality."""
    previous = previous or {}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {"profile": [RDS_PROFILE], **source_tag(report.source.kind)},
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
                    "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                    "value": report.study.accession,
                }
            }
        ]
    resource.update(_subject(refs))
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


def _add_totals(previous: dict[str, Any], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
                "valueQuantity": {**component["valueQuantity"], "value": _number(total)},
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


def _component_key(component: dict[str, Any]) -> tuple[str, str]:
    coding = component["code"]["coding"][0]
    return coding["code"], coding.get("display", "")


def _projection_text(components: list[dict[str, Any]], n_events: int) -> str:
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


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def ct_summary(
    report: DoseReport,
    ctx: Context,
    refs: Refs,
    events: list[dict[str, Any]],
    sop_uids: Iterable[str],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
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


def component_datetime(resource: dict[str, Any], code: str) -> str | None:
    for component in resource.get("component", []):
        if (
            any(c.get("code") == code for c in component["code"].get("coding", []))
            and "valueDateTime" in component
        ):
            return str(component["valueDateTime"])
    return None


def component_value(resource: dict[str, Any], code: str) -> float | None:
    for component in resource.get("component", []):
        if (
            any(c.get("code") == code for c in component["code"].get("coding", []))
            and "valueQuantity" in component
        ):
            return float(component["valueQuantity"]["value"])
    return None


def _acquisition_type(resource: dict[str, Any]) -> str | None:
    for component in resource.get("component", []):
        if (
            component["code"]["coding"][0]["code"] == "113820"
            and "valueCodeableConcept" in component
        ):
            return str(component["valueCodeableConcept"]["coding"][0]["code"])
    return None


def fhir_datetime(value: datetime, ctx: Context) -> str:
    """A FHIR dateTime: DICOM times without an offset are in the site's time zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=ctx.timezone)
    text = aware.isoformat(timespec="milliseconds" if aware.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def codeable(code: Coded) -> dict[str, Any]:
    if not code.value:  # a text where a code could have been
        return {"text": code.meaning}
    coding: dict[str, Any] = {
        "system": _SCHEMES.get(code.scheme)
        or (code.scheme if ":" in code.scheme else f"urn:dicom:scheme:{code.scheme}"),
        "code": code.value,
    }
    if code.meaning:
        coding["display"] = code.meaning
    return {"coding": [coding]}


def _subject(refs: Refs) -> dict[str, Any]:
    return {"subject": {"reference": refs.patient}} if refs.patient else {}


def _component_code(code: str, display: str, scheme: str = DCM) -> dict[str, Any]:
    return {"coding": [{"system": scheme, "code": code, "display": display}]}


def _quantity(
    code: str, display: str, value: float | None, unit: str, scheme: str = DCM
) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "code": _component_code(code, display, scheme),
        "valueQuantity": {"value": _number(value), "unit": unit, "system": UCUM, "code": unit},
    }


def _datetime_component(code: str, display: str, value: str | None) -> dict[str, Any] | None:
    return (
        None if value is None else {"code": _component_code(code, display), "valueDateTime": value}
    )


def _instant_key(text: str) -> float:
    """Order FHIR dateTimes written with different offsets by the instant they name."""
    return date_range(text)[0]


def _integer(code: str, display: str, value: int | None) -> dict[str, Any] | None:
    return (
        None
        if value is None
        else {"code": _component_code(code, display), "valueInteger": int(value)}
    )


def _text_component(code: str, display: str, value: str | None) -> dict[str, Any] | None:
    return None if not value else {"code": _component_code(code, display), "valueString": value}


def _code_component(
    code: str, display: str, value: Coded | None, scheme: str = DCM
) -> dict[str, Any] | None:
    return (
        None
        if value is None
        else {
            "code": _component_code(code, display, scheme),
            "valueCodeableConcept": codeable(value),
        }
    )


def _number(value: float) -> float | int:
    """A JSON number without binary noise: 12 significant digits (DAP in Gy.m2 is ~1e-6).

    >>> _number(4.1e-06), _number(724.5200000000001), _number(3.0)
    (4.1e-06, 724.52, 3)
    """
    rounded = float(f"{float(value):.12g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded


def person(pn: str | None) -> str:
    """A DICOM PN as people write it: "Doctor^Jane" -> "Jane Doctor"; several are joined.

    >>> person("Doctor^Jane"), person("Müller\\\\Smith"), person("^"), person(None)
    ('Jane Doctor', 'Müller, Smith', '', '')
    """
    names = (str(_human_name(one)["text"]) for one in (pn or "").split("\\"))
    return ", ".join(n for n in names if n)


def _human_name(pn: str) -> dict[str, Any]:
    """DICOM PN "Family^Given^Middle^Prefix^Suffix" as a HumanName."""
    parts = (pn.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    name: dict[str, Any] = {
        "text": " ".join(p for p in (prefix, given, middle, family, suffix) if p)
    }
    if family:
        name["family"] = family
    if given or middle:
        name["given"] = [g for g in (given, middle) if g]
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = [suffix]
    return name


def _merge_by_value(
    existing: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    values = {i.get("value") for i in existing}
    return [*existing, *(i for i in new if i.get("value") not in values)]


OCR_CONFIDENCE_URL = "https://kerma.example.org/fhir/StructureDefinition/ocr-confidence"
# the component each value read by OCR is mapped to (DoseReport.confidences paths)
_OCR_COMPONENTS = {
    "ctdivol_mgy": "113830",
    "dlp_mgy_cm": "113838",
    "kvp_kv": "113733",
    "tube_current_ma": "113734",
    "dlp_total_mgy_cm": "113813",
}


def mark_reading(resource: dict[str, Any], report: DoseReport, prefix: str) -> dict[str, Any]:
    """A resource of an OCR report: how sure the reading is of each value (an extension on its
    component), and `preliminary` while doubts wait for review."""
    confidences = {
        _OCR_COMPONENTS[path.removeprefix(prefix)]: c
        for path, c in report.confidences
        if path.startswith(prefix) and path.removeprefix(prefix) in _OCR_COMPONENTS
    }
    for component in resource.get("component", []):
        confidence = confidences.get(component["code"]["coding"][0]["code"])
        if confidence is not None:
            component["extension"] = [
                {"url": OCR_CONFIDENCE_URL, "valueDecimal": round(confidence, 2)}
            ]
    if report.needs_review:
        resource["status"] = "preliminary"
    return resource
