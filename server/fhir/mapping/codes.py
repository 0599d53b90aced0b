"""The code systems, profiles and Kerma's own URLs the FHIR mapping writes."""

from __future__ import annotations

from server.fhir.datatypes import CodeableConcept, Coding

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
# a device's calling AE title (registered over the API, or seen on a C-STORE to Kerma)
AE_TITLE_SYSTEM = "urn:kerma:dicom-ae-title"
# Kerma's key of a person named in dose reports, and of a patient a report names no one for
PERSON_KEY = "urn:kerma:person-key"
UNIDENTIFIED_PATIENT = "urn:kerma:unidentified-patient"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


SUMMARY_CODE: Coding = {
    "system": LOINC,
    "code": "73569-6",
    # as the IG's profile fixes it (the LOINC long name)
    "display": "Radiation exposure and protection information [Description] Document Diagnostic imaging",
}
# v2-0203 identifier types, with the displays the IG's slices fix
ACCESSION_TYPE: CodeableConcept = {
    "coding": [{"system": V2_0203, "code": "ACSN", "display": "Accession ID"}]
}
SERIAL_NUMBER_TYPE: CodeableConcept = {
    "coding": [{"system": V2_0203, "code": "SNO", "display": "Serial Number"}]
}


EVENT_CODE: Coding = {"system": DCM, "code": "113852", "display": "Irradiation Event"}


SCHEMES = {"DCM": DCM, "SCT": SCT, "LN": LOINC, "UCUM": UCUM}


# Image attributes with no SR concept (scheme ATTR in mappings/dicom/concepts.csv): coded by
# their DICOM keyword
DICOM_ATTRIBUTE = "urn:kerma:dicom-attribute"


QUALITY_TAG: Coding = {
    "system": "https://kerma.example.org/fhir/CodeSystem/dose-quality",
    "code": "plausibility-warning",
}


SOURCE_TAG = "https://kerma.example.org/fhir/CodeSystem/dose-source"


PATIENT_AT_MODALITY_URL = "https://kerma.example.org/fhir/StructureDefinition/patient-at-modality"


CLASSIFICATION_URL = "https://kerma.example.org/fhir/StructureDefinition/classification"


SYSTEMS = {"DCM": DCM, "SCT": SCT, "LN": LOINC, "ATTR": DICOM_ATTRIBUTE}


OCR_CONFIDENCE_URL = "https://kerma.example.org/fhir/StructureDefinition/ocr-confidence"
