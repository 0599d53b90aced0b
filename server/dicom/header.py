"""Patient, study, equipment and source identity from the DICOM header (any object)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydicom.dataset import Dataset

from server.dicom.text import age_years, combine, parse_date, parse_datetime, repair_text
from server.dose.ages import exact_age
from server.dose.model import Equipment, Patient, Source, Study

_SEX = {"M": "M", "F": "F", "O": "O"}
_CODE_STRING = re.compile(r"[A-Z0-9 _]{1,16}")


def text(ds: Dataset, keyword: str) -> str | None:
    """A string attribute, charset-repaired and stripped; None when absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    cleaned = repair_text(str(value)).strip().rstrip("\x00")
    return cleaned or None


def code_string(ds: Dataset, keyword: str) -> str | None:
    """A CS attribute (Modality...) when it is one: VR CS and PS3.5's characters (upper-case
    letters, digits, space, underscore; at most 16); None otherwise, so an element written with
    another VR (a UL Modality read 4294967295) is no code."""
    element = ds.data_element(keyword) if keyword in ds else None
    value = text(ds, keyword) if element is not None and element.VR == "CS" else None
    return value if value is not None and _CODE_STRING.fullmatch(value) else None


def number(ds: Dataset, keyword: str) -> float | None:
    """A numeric attribute (DS, IS, FD, US); None when absent, empty or not a number."""
    try:
        value: Any = ds.get(keyword)
    except (ValueError, TypeError, OverflowError):  # invalid IS/DS strings raise on access
        return None
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def patient(ds: Dataset, study_date: date | None) -> Patient:
    birth = parse_date(text(ds, "PatientBirthDate"))
    stated = age_years(text(ds, "PatientAge"))
    # dates give the age to the day; the Age String (067Y) only to the year
    age = exact_age(birth, study_date) if birth and study_date else stated
    size_m = number(ds, "PatientSize")
    weight_kg = number(ds, "PatientWeight")
    sex = _SEX.get(text(ds, "PatientSex") or "")
    return Patient(
        patient_id=text(ds, "PatientID"),
        issuer=text(ds, "IssuerOfPatientID"),
        name=text(ds, "PatientName"),
        birth_date=birth,
        sex=sex,  # type: ignore[arg-type]
        age_years=age,
        stated_age_years=stated,
        size_m=size_m if size_m else None,  # 0 means "not measured" on many modalities
        weight_kg=weight_kg if weight_kg else None,
    )


def many(value: Any) -> list[Any]:
    """A multi-valued attribute as a list (pydicom gives a single value unwrapped)."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def study(ds: Dataset) -> Study:
    operators = many(ds.get("OperatorsName"))
    requested = None
    seq = ds.get("RequestAttributesSequence")
    if seq:
        requested = text(seq[0], "RequestedProcedureDescription")
    return Study(
        study_uid=str(ds.get("StudyInstanceUID", "")),
        accession=text(ds, "AccessionNumber"),
        study_id=text(ds, "StudyID"),
        started=combine(text(ds, "StudyDate"), text(ds, "StudyTime")),
        description=text(ds, "StudyDescription"),
        requested_procedure=requested or text(ds, "RequestedProcedureDescription"),
        referring_physician=text(ds, "ReferringPhysicianName"),
        performing_physician=text(ds, "PerformingPhysicianName"),
        reading_physician=text(ds, "NameOfPhysiciansReadingStudy"),
        operators=tuple(repair_text(str(o)) for o in operators if str(o)),
    )


def equipment(ds: Dataset, modality: str | None) -> Equipment:
    versions = many(ds.get("SoftwareVersions"))
    return Equipment(
        manufacturer=text(ds, "Manufacturer"),
        model=text(ds, "ManufacturerModelName"),
        serial_number=text(ds, "DeviceSerialNumber"),
        station_name=text(ds, "StationName"),
        software_versions=tuple(str(v) for v in versions if str(v)),
        device_uid=text(ds, "DeviceUID"),
        institution=text(ds, "InstitutionName"),
        department=text(ds, "InstitutionalDepartmentName"),
        modality=modality,
    )


def source(ds: Dataset, template: str | None, kind: str) -> Source:
    series_number = number(ds, "SeriesNumber")
    return Source(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        sop_class_uid=str(ds.get("SOPClassUID", "")),
        series_uid=text(ds, "SeriesInstanceUID"),
        series_number=int(series_number) if series_number is not None else None,
        series_description=text(ds, "SeriesDescription"),
        modality=code_string(ds, "Modality"),
        template=template,
        kind=kind,  # type: ignore[arg-type]
        content_datetime=combine(text(ds, "ContentDate"), text(ds, "ContentTime"))
        or parse_datetime(text(ds, "AcquisitionDateTime") or ""),
    )
