"""AuditEvents for every read or search that returned patient data (who, what, when, whom).

The AuditEvent names the user and the patients, never the patients' names; the query string
is kept (base64, as FHIR wants) because the audit trail must show what was asked.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

from server.fhir.values import instant
from server.store.port import Stored, User

_MAX_PATIENTS = 1000


# A patient reference in a stored body (compact JSON Kerma wrote); an id cannot hold a quote
# or a slash, and a quote inside a JSON string is escaped, so text cannot fake one. Scanning
# the bytes costs a fifth of what parsing and walking the resource did (most of a search's time).
_PATIENT_REFERENCE = re.compile(rb'"reference"\s*:\s*"(Patient/[^"/]+)')


def patients_in(stored: Iterable[Stored]) -> list[str]:
    """ "Patient/<id>" of every patient the resources are about or name anywhere (a subject,
    a Provenance target, a Group member), in first-seen order."""
    found: dict[str, None] = {}
    for s in stored:
        if s.body is None or s.rtype == "AuditEvent":
            continue
        if s.rtype == "Patient":
            found[f"Patient/{s.rid}"] = None
        for ref in _PATIENT_REFERENCE.findall(s.body):
            found[ref.decode()] = None
    return list(found)[:_MAX_PATIENTS]


def audit_event(
    user: User,
    interaction: str,
    patients: list[str],
    method: str,
    path: str,
    query: str,
    address: str | None,
    now: float,
    objects: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An R4 AuditEvent for one RESTful interaction that disclosed these patients' data;
    `objects`: other resources it concerned ("Task/<id>" of an export that was downloaded)."""
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                }
            ]
        },
        "who": {"identifier": {"system": "urn:kerma:user", "value": user.name}},
        "altId": user.name,
        "name": user.name,
        "requestor": True,
        "role": [{"text": user.role}],
    }
    if address:
        agent["network"] = {"address": address, "type": "2"}
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": p},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1",
            },
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
        }
        for p in patients
    ]
    entities += [
        {
            "what": {"reference": ref},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "2"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "3"},
        }
        for ref in objects
    ]  # fmt: skip
    request_entity: dict[str, Any] = {
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"},
        "description": f"{method} {path}",
    }
    if query:
        request_entity["query"] = base64.b64encode(query.encode()).decode()
    return {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}],
        "action": "R" if interaction in ("read", "vread") else "E",
        "recorded": instant(now),
        "outcome": "0",
        "agent": [agent],
        "source": {
            "observer": {"display": "Kerma"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                }
            ],
        },
        "entity": [*entities, request_entity],
    }
