"""What mapping needs to know about the site (time zone, identifiers, tables), and the
FHIR datatypes every resource uses (dateTime, CodeableConcept, identifiers)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

import orjson

from server.dose.alerts import AlertRule
from server.dose.classify import Rules
from server.dose.drl import DoseLevel, applicable
from server.dose.model import Coded
from server.dose.units import UnitTable
from server.fhir.datatypes import CodeableConcept, Coding, Identifier, Meta
from server.fhir.mapping.codes import IDENTIFIER_TYPE, SCHEMES, SOURCE_TAG
from server.fhir.values import date_range
from server.mappings import classification_rules, read_text, unit_table


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


def uid_identifier(uid: str, id_type: str | None = None) -> Identifier:
    identifier: Identifier = {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
    if id_type:
        identifier["type"] = identifier_type(id_type)
    return identifier


def identifier_type(code: str) -> CodeableConcept:
    """A type of the IG's dicom-identifier-type code system, with its display (the IG's
    slices match on it)."""
    return {"coding": [{"system": IDENTIFIER_TYPE, "code": code, "display": _displays()[code]}]}


@functools.cache
def _displays() -> dict[str, str]:
    system = orjson.loads(read_text("fhir/profiles/CodeSystem-dicom-identifier-type.json"))
    return {c["code"]: c["display"] for c in system["concept"]}


def source_tag(kind: str) -> Meta:
    """meta.tag saying where a dose Observation came from (SourceKind: rdsr, mpps, ocr...)."""
    return {"tag": [{"system": SOURCE_TAG, "code": kind}]}


def fhir_datetime(value: datetime, ctx: Context) -> str:
    """A FHIR dateTime: DICOM times without an offset are in the site's time zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=ctx.timezone)
    text = aware.isoformat(timespec="milliseconds" if aware.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def codeable(code: Coded) -> CodeableConcept:
    if not code.value:  # a text where a code could have been
        return {"text": code.meaning}
    coding: Coding = {
        "system": SCHEMES.get(code.scheme)
        or (code.scheme if ":" in code.scheme else f"urn:dicom:scheme:{code.scheme}"),
        "code": code.value,
    }
    if code.meaning:
        coding["display"] = code.meaning
    return {"coding": [coding]}


def _instant_key(text: str) -> float:
    """Order FHIR dateTimes written with different offsets by the instant they name."""
    return date_range(text)[0]
