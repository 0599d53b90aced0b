"""DICOM in: decide what an object is and read its dose into the dose model.

`read_dicom(data)` never raises for bad input. It answers with one of:
- `Read(report=...)`: a dose report (CT or projection X-ray RDSR, or image headers),
- `Skipped(reason)`: a valid object that carries no X-ray dose (NM/PET images, other SRs),
- `Unreadable(reason)`: bytes that are not DICOM or cannot be parsed; they go to quarantine.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes

from server.dicom import (
    dose_info,
    fast_sr,
    header,
    image_header,
    mpps,
    ocr,
    rdsr_ct,
    rdsr_projection,
    screens,
    vendor,
)
from server.dicom.sr import Item, participants
from server.dose import plausibility
from server.dose.model import Coded, DoseReport, Equipment, Finding
from server.dose.units import UnitTable
from server.mappings import plausibility_bounds

DCM = codes.DCM
DOSE_REPORT_ROOT = ("DCM", "113701")  # X-Ray Radiation Dose Report
RADIOPHARMACEUTICAL_ROOT = ("DCM", "113500")
CT_PROCEDURE = ("SCT", "77477000")
MAMMOGRAPHY_PROCEDURE = ("SCT", "71651007")
DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
}
RADIOPHARMACEUTICAL_SR = "1.2.840.10008.5.1.4.1.1.88.68"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
NO_XRAY_MODALITIES = {
    "NM": "nuclear medicine image",
    "PT": "PET image",
    "MR": "MR image",
    "US": "ultrasound image",
}


@dataclass(frozen=True)
class Read:
    report: DoseReport


@dataclass(frozen=True)
class Skipped:
    reason: str
    sop_instance_uid: str | None = None


@dataclass(frozen=True)
class Unreadable:
    reason: str


Outcome = Read | Skipped | Unreadable


def read_dicom(data: bytes | Path, units: UnitTable) -> Outcome:
    raw = data if isinstance(data, bytes) else data.read_bytes()
    try:
        header_bytes, content = _fast_content(raw)
        cut = fast_sr.cut_short(raw if content is None else header_bytes)
        if cut is not None:  # pydicom would read what is left and the rest be missing unsaid
            return Unreadable(f"the file is cut short ({cut}): nothing of it is stored")
        ds = pydicom.dcmread(io.BytesIO(header_bytes), stop_before_pixels=True)
        for _ in ds.iterall():  # parse every element now: a broken sequence is found here
            pass
    except (InvalidDicomError, EOFError) as e:
        return Unreadable(f"not a DICOM file: {e}")
    except Exception as e:  # pydicom raises many types on damaged files
        return Unreadable(f"cannot parse DICOM: {type(e).__name__}: {e}")
    try:
        outcome = _dispatch(ds, units, content, raw)
    except Exception as e:  # a damaged element found late (e.g. a broken sequence)
        return Unreadable(f"cannot read DICOM content: {type(e).__name__}: {e}")
    if isinstance(outcome, Read):
        report = outcome.report
        bounds = plausibility_bounds()
        report, times = plausibility.plausible_times(report, bounds, dt.date.today())
        report, set_aside = plausibility.plausible_patient(report, bounds)
        findings = report.findings + times + set_aside + plausibility.check(report, bounds)
        return Read(replace(report, findings=findings))
    return outcome


Content = tuple[object, list[str]] | None  # the fast reader's parsed Content Sequence and codecs


def _fast_content(raw: bytes) -> tuple[bytes, Content]:
    """The file without its Content Sequence and the sequence parsed by the fast reader; the
    whole file and None when the fast reader does not handle it (pydicom reads it all then)."""
    try:
        header_bytes, parsed, encodings = fast_sr.split(raw)
    except fast_sr.Unsupported:
        return raw, None
    return (header_bytes, (parsed, encodings)) if parsed is not None else (raw, None)


def _root_item(ds: Dataset, content: Content) -> Item:
    """The SR root with its tree: from the fast reader's parse, else through pydicom."""
    if content is None:
        return Item.of(ds)
    parsed, encodings = content
    root = Item.of(ds)  # the root concept only: the Content Sequence was cut out of `ds`
    children = fast_sr.build(parsed, encodings, root.path)  # type: ignore[arg-type]
    return replace(root, children=children, _index={})


def _dispatch(ds: Dataset, units: UnitTable, content: Content, raw: bytes) -> Outcome:
    sop_class = str(ds.get("SOPClassUID", ""))
    uid = str(ds.get("SOPInstanceUID", "")) or None
    modality = header.code_string(ds, "Modality") or ""
    if sop_class == mpps.MPPS_CLASS:
        report = mpps.mpps_report(ds, units)
        return Read(report) if not isinstance(report, str) else Skipped(report, uid)
    if sop_class == RADIOPHARMACEUTICAL_SR:
        return Skipped("radiopharmaceutical dose SR: not an X-ray dose (not supported yet)", uid)
    if sop_class in SR_CLASSES:
        return _structured_report(ds, sop_class, units, content)
    if modality in NO_XRAY_MODALITIES:
        return Skipped(f"{NO_XRAY_MODALITIES[modality]}: carries no X-ray dose", uid)
    if sop_class.startswith(SECONDARY_CAPTURE) and dose_info.has_dose_tags(ds):
        return Read(dose_info.dose_info_report(ds, units))
    if sop_class.startswith(SECONDARY_CAPTURE) and modality == "CT" and screens.is_dose_screen(ds):
        report = ocr.screen_report(pydicom.dcmread(io.BytesIO(raw)), units)  # pixels now
        return Read(report) if not isinstance(report, str) else Skipped(report, uid)
    if (
        sop_class.startswith(SECONDARY_CAPTURE)
        and modality in image_header.PROJECTION_MODALITIES
        and image_header.has_projection_dose(ds)
    ):  # a mammography flat-field or QA exposure saved as a secondary capture, dose in its header
        return Read(image_header.projection_report(ds, modality, units))
    if sop_class.startswith(SECONDARY_CAPTURE):
        return Skipped(
            f"{modality or 'unknown'} secondary capture with no dose attribute in its header and "
            "no CT dose screen Kerma reads",
            uid,
        )
    if (
        modality == "CT"
        and header.text(ds, "BodyPartExamined") == "BREAST"
        and header.number(ds, "OrganDose")
    ):
        modality = "MG"  # Hologic tomosynthesis stored with the CT Image class
    if modality in image_header.PROJECTION_MODALITIES:
        if not image_header.has_projection_dose(ds):
            return Skipped(f"{modality} image without any dose or exposure attribute", uid)
        return Read(image_header.projection_report(ds, modality, units))
    if modality == "CT":
        report = image_header.ct_image_report(ds, units)
        return Read(report) if not isinstance(report, str) else Skipped(report, uid)
    return Skipped(
        f"{modality or 'unknown'} object of class {sop_class}: image-header dose reading is not supported yet",
        uid,
    )


def _structured_report(ds: Dataset, sop_class: str, units: UnitTable, content: Content) -> Outcome:
    uid = str(ds.get("SOPInstanceUID", "")) or None
    has_content = content is not None or bool(ds.get("ContentSequence"))
    if not ds.get("ConceptNameCodeSequence") or (sop_class == DOSE_SR and not has_content):
        return Unreadable("structured report without root concept or content tree (truncated?)")
    root = _root_item(ds, content)
    if root.concept == RADIOPHARMACEUTICAL_ROOT:
        return Skipped(
            "radiopharmaceutical dose report: not an X-ray dose (not supported yet)", uid
        )
    private = vendor.private_summaries().get(root.concept) if root.concept else None
    if private is not None:
        return Read(_private_summary_report(ds, root, private, units))
    if root.concept != DOSE_REPORT_ROOT:
        name = f"{root.concept[0]}:{root.concept[1]}" if root.concept else "none"
        return Skipped(f"{SR_CLASSES[sop_class]} is not a dose report (root concept {name})", uid)
    declared = _declared_template(ds)
    procedure = root.code_of(DCM.ProcedureReported)
    is_ct = declared == "10011" or (
        declared is None
        and procedure is not None
        and (procedure.scheme, procedure.value) == CT_PROCEDURE
    )
    if is_ct:
        return Read(_ct_report(ds, root, declared, units))
    return Read(_projection_report(ds, root, declared, units))


def _ct_report(ds: Dataset, root: Item, declared: str | None, units: UnitTable) -> DoseReport:
    findings: list[Finding] = []
    if declared is None:
        findings.append(
            Finding(
                "/", "information", "template-inferred", "no template declared; TID 10011 inferred"
            )
        )
    study = header.study(ds)
    report = DoseReport(
        kind="ct",
        source=replace(
            header.source(ds, "10011", "rdsr"),
            information_source=root.code_of(DCM.SourceOfDoseInformation),
        ),
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=_observer_equipment(ds, root, "CT"),
        procedure_reported=root.code_of(DCM.ProcedureReported),
        irradiation_start=root.datetime_of(DCM.StartOfXRayIrradiation),
        irradiation_end=root.datetime_of(DCM.EndOfXRayIrradiation),
        ct_totals=rdsr_ct.totals(root, units, findings),
        ct_events=rdsr_ct.events(root, units, findings),
        participants=participants(root),
    )
    return replace(report, findings=tuple(findings))


def _projection_report(
    ds: Dataset, root: Item, declared: str | None, units: UnitTable
) -> DoseReport:
    findings: list[Finding] = []
    if declared is None:
        findings.append(
            Finding(
                "/", "information", "template-inferred", "no template declared; TID 10001 inferred"
            )
        )
    study = header.study(ds)
    procedure = root.code_of(DCM.ProcedureReported)
    device_type = root.code_of(DCM.AcquisitionDeviceType)
    plane_totals = rdsr_projection.totals(root, units, findings)
    if procedure is not None and (procedure.scheme, procedure.value) == MAMMOGRAPHY_PROCEDURE:
        modality = "MG"
    else:
        modality = "RF" if rdsr_projection.is_fluoroscopy(device_type, plane_totals) else "DX"
    report = DoseReport(
        kind="projection",
        source=replace(
            header.source(ds, "10001", "rdsr"),
            information_source=root.code_of(DCM.SourceOfDoseInformation),
        ),
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=_observer_equipment(ds, root, modality),
        procedure_reported=procedure,
        irradiation_start=root.datetime_of(DCM.StartOfXRayIrradiation),
        irradiation_end=root.datetime_of(DCM.EndOfXRayIrradiation),
        acquisition_device_type=device_type,
        projection_totals=plane_totals,
        mammography_totals=rdsr_projection.mammography_totals(root, units, findings),
        projection_events=vendor.carry_forward(
            rdsr_projection.events(root, units, findings, _patient_position(ds, root)),
            header.text(ds, "Manufacturer"),
        ),
        participants=participants(root),
    )
    return replace(report, findings=tuple(findings))


def _private_summary_report(
    ds: Dataset, root: Item, spec: dict[str, Any], units: UnitTable
) -> DoseReport:
    """A proprietary summary (no events): the accumulated dose it states, as a projection report."""
    findings = [Finding("/", "information", "private-summary", f"read as {spec['description']}")]
    study = header.study(ds)
    return DoseReport(
        kind="projection",
        source=header.source(ds, None, "rdsr"),
        patient=header.patient(ds, study.started.date() if study.started else None),
        study=study,
        equipment=header.equipment(ds, spec["modality"]),
        procedure_reported=Coded("DCM", "113704", "Projection X-Ray"),
        projection_totals=(vendor.private_totals(root, spec, units, findings),),
        findings=tuple(findings),
    )


def _patient_position(ds: Dataset, root: Item) -> vendor.PositionCodes | None:
    """Patient Position (0018,5100), or the one a Siemens system writes into its root comment."""
    position = header.text(ds, "PatientPosition") or vendor.siemens_patient_position(
        root.text_of(DCM.Comment)
    )
    return vendor.position_codes(position)


def _observer_equipment(ds: Dataset, root: Item, modality: str) -> Equipment:
    """The header's equipment, completed from the device observer context (TID 1004)."""
    equipment = header.equipment(ds, modality)
    return replace(
        equipment,
        manufacturer=equipment.manufacturer or root.text_of(DCM.DeviceObserverManufacturer),
        model=equipment.model or root.text_of(DCM.DeviceObserverModelName),
        serial_number=equipment.serial_number or root.text_of(DCM.DeviceObserverSerialNumber),
        station_name=equipment.station_name or root.text_of(DCM.DeviceObserverName),
        device_uid=equipment.device_uid or root.uid_of(DCM.DeviceObserverUID),
    )


def _declared_template(ds: Dataset) -> str | None:
    seq = ds.get("ContentTemplateSequence")
    if seq and seq[0].get("TemplateIdentifier"):
        return str(seq[0].TemplateIdentifier)
    return None
