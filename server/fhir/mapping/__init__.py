"""Dose reports as FHIR resources, by what is mapped (Patient, Device, ImagingStudy, irradiation
event and summary Observations), after the HL7 Radiation Dose Summary IG. The concepts and
where they go are mappings/dicom/concepts.csv."""

from __future__ import annotations

from server.fhir.mapping.codes import (
    CLASSIFICATION_URL,
    DCM,
    DEVICE_PROFILE,
    DICOM_ATTRIBUTE,
    EVENT_CODE,
    IDENTIFIER_TYPE,
    KERMA_DEVICE_KEY,
    LOINC,
    OCR_CONFIDENCE_URL,
    PATIENT_AT_MODALITY_URL,
    QUALITY_TAG,
    RDS_PROFILE,
    SCT,
    SOURCE_TAG,
    SUMMARY_CODE,
    UCUM,
    V2_0203,
)
from server.fhir.mapping.components import component_datetime, component_value, components_of
from server.fhir.mapping.context import Context, codeable, fhir_datetime, source_tag, uid_identifier
from server.fhir.mapping.device import device, device_identity, device_key, device_label
from server.fhir.mapping.events import Refs, ct_event, extend_scan_range, projection_event
from server.fhir.mapping.patient import (
    body_measurements,
    patient,
    patient_at_modality,
    patient_identifier,
    person,
)
from server.fhir.mapping.reading import mark_reading
from server.fhir.mapping.study import (
    Decision,
    apply_classification,
    classification_of,
    classifying_rule,
    exam_of,
    extension,
    imaging_study,
    put_extension,
)
from server.fhir.mapping.summary import ct_summary, projection_summary

__all__ = [
    "CLASSIFICATION_URL",
    "DCM",
    "DEVICE_PROFILE",
    "DICOM_ATTRIBUTE",
    "EVENT_CODE",
    "IDENTIFIER_TYPE",
    "KERMA_DEVICE_KEY",
    "LOINC",
    "OCR_CONFIDENCE_URL",
    "PATIENT_AT_MODALITY_URL",
    "QUALITY_TAG",
    "RDS_PROFILE",
    "SCT",
    "SOURCE_TAG",
    "SUMMARY_CODE",
    "UCUM",
    "V2_0203",
    "Context",
    "Decision",
    "Refs",
    "apply_classification",
    "body_measurements",
    "classification_of",
    "classifying_rule",
    "codeable",
    "component_datetime",
    "component_value",
    "components_of",
    "ct_event",
    "ct_summary",
    "device",
    "device_identity",
    "device_key",
    "device_label",
    "exam_of",
    "extend_scan_range",
    "extension",
    "fhir_datetime",
    "imaging_study",
    "mark_reading",
    "patient",
    "patient_at_modality",
    "patient_identifier",
    "person",
    "projection_event",
    "projection_summary",
    "put_extension",
    "source_tag",
    "uid_identifier",
]
