"""Reconciliation of dose data with the HIS/RIS (requirements A2, A3): orders that got no dose
data, dose data that answers no order, and studies whose patient, as keyed in at the modality,
is not the patient the HIS keeps (the trauma case "Motorbike, accident 18:10").

Each list is a FHIR List (mode snapshot, not stored); an entry's flag says why it is there.
"""

from __future__ import annotations

import time
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from server.fhir.errors import FhirError
from server.fhir.mapping import (
    CLASSIFICATION_URL,
    PATIENT_AT_MODALITY_URL,
    classifying_rule,
    extension,
)
from server.fhir.service import FhirService, body_of
from server.fhir.values import date_range, instant
from server.store.port import Reader, Stored

KINDS = {
    "orders-without-dose": "Orders without dose data",
    "dose-without-order": "Dose data without an order",
    "demographics-mismatch": "Studies whose patient at the modality differs from the HIS patient",
    "unclassified": "Studies no classification rule matched",
}
LIST_CODES = "https://kerma.example.org/fhir/CodeSystem/reconciliation"
_WAITING = ("active", "completed")
_MAX_HOURS = 24 * 366 * 100  # orders that should have dose data by now


def reconciliation(
    service: FhirService, reader: Reader, kind: str, hours: float = 24.0
) -> tuple[dict[str, Any], list[Stored]]:
    """The List resource, and the resources it names (for the audit trail)."""
    if kind not in KINDS:
        raise FhirError.of(400, "invalid", f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not 0 <= hours <= _MAX_HOURS:  # also refuses NaN
        raise FhirError.of(400, "invalid", f"hours must be between 0 and {_MAX_HOURS}")
    if kind == "orders-without-dose":
        found = orders_without_dose(
            service, reader, datetime.now().astimezone() - timedelta(hours=hours)
        )
    elif kind == "dose-without-order":
        found = [
            (s, "no basedOn")
            for s in _all(service, reader, "ImagingStudy")
            if "basedOn" not in body_of(s)
        ]
    elif kind == "unclassified":
        found = unclassified(service, reader)
    else:
        found = demographics_mismatches(service, reader)
    listed = {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": KINDS[kind],
        "code": {"coding": [{"system": LIST_CODES, "code": kind}]},
        "date": instant(time.time()),
        "entry": [
            {"flag": {"text": why}, "item": {"reference": f"{s.rtype}/{s.rid}"}} for s, why in found
        ],
    }
    if not found:
        listed["emptyReason"] = {"text": "nothing to reconcile"}
        del listed["entry"]
    return listed, [s for s, _ in found]


def orders_without_dose(
    service: FhirService, reader: Reader, due_before: datetime
) -> list[tuple[Stored, str]]:
    """Orders due (scheduled, else authored) before `due_before` that no study answers."""
    found = []
    for order in _all(service, reader, "ServiceRequest"):
        body = body_of(order)
        due = body.get("occurrenceDateTime") or body.get("authoredOn")
        if body.get("status") not in _WAITING or not due:
            continue
        if date_range(due)[0] > due_before.timestamp():
            continue
        ref = f"ServiceRequest/{order.rid}"
        if not service.all_in(reader, "ImagingStudy", [("basedon", ref)]):
            found.append((order, f"due {due}, no study"))
    return found


def demographics_mismatches(service: FhirService, reader: Reader) -> list[tuple[Stored, str]]:
    found = []
    for study in _all(service, reader, "ImagingStudy"):
        body = body_of(study)
        at_modality = extension(body, PATIENT_AT_MODALITY_URL)
        subject = body.get("subject", {}).get("reference", "")
        if at_modality is None or not subject.startswith("Patient/"):
            continue
        patient = reader.read("Patient", subject.split("/")[1])
        if patient is None:
            continue
        differences = _differences(at_modality, body_of(patient))
        if differences:
            found.append((study, "; ".join(differences)))
    return found


def unclassified(service: FhirService, reader: Reader) -> list[tuple[Stored, str]]:
    """Studies the rules did not match, with the words they had, for whoever writes rules."""
    found = []
    for study in _all(service, reader, "ImagingStudy"):
        body = body_of(study)
        if extension(body, CLASSIFICATION_URL) is None or classifying_rule(body) != "unmatched":
            continue  # not classified at all (stored before classification), or classified
        modalities = ",".join(m["code"] for m in body.get("modality", []))
        words = [body.get("description"), *(c.get("text") for c in body.get("procedureCode", []))]
        protocols = {s.get("description") for s in body.get("series", [])}
        found.append((study, " | ".join(w for w in (modalities, *words, *protocols) if w)))
    return found


def _differences(at_modality: dict[str, Any], patient: dict[str, Any]) -> list[str]:
    said = {
        e["url"]: next(v for k, v in e.items() if k.startswith("value"))
        for e in at_modality["extension"]
    }
    out = []
    name = (patient.get("name") or [{}])[0]
    if "name" in said and name:
        family, _, given = (said["name"].split("=")[0] + "^").partition("^")
        his_family = name.get("family", "")
        his_given = (name.get("given") or [""])[0]
        if _folded(family) != _folded(his_family) or (
            given.strip("^") and his_given and _folded(given.split("^")[0]) != _folded(his_given)
        ):
            out.append(f"name: modality {said['name']!r}, HIS {his_family}^{his_given}")
    for key in ("birthDate", "gender"):
        if key in said and patient.get(key) and said[key] != patient[key]:
            out.append(f"{key}: modality {said[key]}, HIS {patient[key]}")
    return out


def _folded(text: str) -> str:
    """Names compared as people would: case, accents, spaces and hyphens aside."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.casefold() if ch.isalnum())


def _all(service: FhirService, reader: Reader, rtype: str) -> list[Stored]:
    return service.all_in(reader, rtype, [])
