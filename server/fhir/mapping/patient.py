"""Patient: identity, name, demographics, the patient as the modality recorded it, and body
measurements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from server.dose.model import DoseReport, Participant, Patient
from server.fhir import datatypes as fhir
from server.fhir.mapping.codes import (
    DATA_ABSENT,
    LOINC,
    PATIENT_AT_MODALITY_URL,
    PERSON_KEY,
    UCUM,
    UNIDENTIFIED_PATIENT,
)
from server.fhir.mapping.components import number
from server.fhir.mapping.context import Context, fhir_datetime

_GENDER = {"M": "male", "F": "female", "O": "other"}

Valued = TypeVar("Valued", bound=Mapping[str, object])  # an Identifier, say


def patient_identifier(report: DoseReport, ctx: Context) -> tuple[str, str] | None:
    """(system, value): the issuer (the file's, else the site's) is part of the system, as
    HL7's assigning authority is: the same patient arriving by ADT is found by it."""
    if not report.patient.patient_id:
        return None
    issuer = report.patient.issuer or ctx.patient_id_issuer
    system = ctx.patient_id_system + (f":{issuer}" if issuer else "")
    return system, report.patient.patient_id


def patient(report: DoseReport, ctx: Context) -> fhir.Patient:
    p = report.patient
    resource: fhir.Patient = {"resourceType": "Patient"}
    ident = patient_identifier(report, ctx)
    if ident:
        identifier: fhir.Identifier = {"system": ident[0], "value": ident[1]}
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


def patient_at_modality(p: Patient) -> fhir.Extension | None:
    """Who the modality said the patient was (name, birth date, sex as keyed in there): the
    reconciliation compares it with the Patient the HIS maintains."""
    parts: list[fhir.Extension] = []
    if p.name:
        parts.append({"url": "name", "valueString": p.name})
    if p.birth_date:
        parts.append({"url": "birthDate", "valueDate": p.birth_date.isoformat()})
    if p.sex:
        parts.append({"url": "gender", "valueCode": _GENDER[p.sex]})
    return {"url": PATIENT_AT_MODALITY_URL, "extension": parts} if parts else None


def body_measurements(
    report: DoseReport, ctx: Context, patient_ref: str, study_ref: str
) -> list[fhir.Observation]:
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
        obs: fhir.Observation = {
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
            "valueQuantity": {"value": number(value), "unit": unit, "system": UCUM, "code": unit},
        }
        if when:
            obs["effectiveDateTime"] = fhir_datetime(when, ctx)
        out.append(obs)
    return out


def person(pn: str | None) -> str:
    """A DICOM PN as people write it: "Doctor^Jane" -> "Jane Doctor"; several are joined.

    >>> person("Doctor^Jane"), person("Müller\\\\Smith"), person("^"), person(None)
    ('Jane Doctor', 'Müller, Smith', '', '')
    """
    names = (str(_human_name(one)["text"]) for one in (pn or "").split("\\"))
    return ", ".join(n for n in names if n)


def _human_name(pn: str) -> fhir.HumanName:
    """DICOM PN "Family^Given^Middle^Prefix^Suffix" as a HumanName."""
    parts = (pn.split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    name: fhir.HumanName = {
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


def merge_by_value(existing: Sequence[Valued], new: Sequence[Valued]) -> list[Valued]:
    """`existing`, then the items of `new` whose value none of them has."""
    values = {i.get("value") for i in existing}
    return [*existing, *(i for i in new if i.get("value") not in values)]


def unidentified_patient(report: DoseReport) -> fhir.Patient:
    """The patient of a report that names none (no Patient ID): one per study, so the dose
    is someone's until `$reassign` moves the study to whom it belongs."""
    identifier: fhir.Identifier = {"system": UNIDENTIFIED_PATIENT, "value": report.study.study_uid}
    return {"resourceType": "Patient", "identifier": [identifier], "active": True}


def practitioner(person: Participant | None) -> fhir.Practitioner:
    """A person a dose report names (TID 1020), keyed by ID and issuer, else by name and
    organization; None: the irradiation authorizing person the IG asks for and the report does
    not name (a Practitioner whose name is absent, with the reason)."""
    if person is None:
        absent: fhir.HumanName = {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}],
                                  "text": "not recorded in the dose report"}  # fmt: skip
        return {"resourceType": "Practitioner", "identifier": [_person_key("not-recorded")],
                "name": [absent]}  # fmt: skip
    key = "|".join(p or "" for p in (person.issuer, person.person_id)) if person.person_id else (
        f"{(person.name or '').upper()}|{(person.organization or '').upper()}")  # fmt: skip
    identifiers = [_person_key(key)]
    if person.person_id:
        identifier: fhir.Identifier = {"value": person.person_id}
        if person.issuer:
            identifier["assigner"] = {"display": person.issuer}
        identifiers.append(identifier)
    resource: fhir.Practitioner = {"resourceType": "Practitioner", "identifier": identifiers}
    if person.name:
        resource["name"] = [_human_name(person.name)]
    return resource


def practitioner_key(resource: fhir.Practitioner) -> str:
    """The search value that finds a practitioner() again."""
    return f"{PERSON_KEY}|{resource['identifier'][0]['value']}"


def _person_key(value: str) -> fhir.Identifier:
    return {"system": PERSON_KEY, "value": value}
