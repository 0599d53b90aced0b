"""The world and the oracle of the generated authorization test (test_every_way_out.py).

The world: two devices, two patients, and one resource of every type the server stores, linked
so that every way out (includes, chains, references) can reach another device's dose data. The
oracle says what each role may see and change, read from `mappings/roles.yaml` by this file
alone, without the server's code, as the comments of that table define it: "*" is every type
but AuditEvent (and, for write and delete, but the site's configuration: Library, Subscription);
a role bound to its devices sees the dose data (Observations, DetectedIssues) of those only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
TABLE: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[2] / "mappings" / "roles.yaml").read_text()
)
EXPLICIT_ONLY = {"read": {"AuditEvent"}, "write": {"AuditEvent", "Library", "Subscription"}}
EXPLICIT_ONLY["delete"] = EXPLICIT_ONLY["write"]
OWN_DEVICE = "Device/dev-a"  # the radiographer's (tests/conftest.py's tokens)
# resources of the response, not stored ones
ENVELOPES = {"searchset", "batch-response", "transaction-response", "history"}


def ref(target: str) -> Resource:
    return {"reference": target}


PERIOD: Resource = {"start": "2026-01-01", "end": "2026-12-31"}
SEEDS: list[Resource] = [
    {
        "resourceType": "Patient",
        "id": "pat-1",
        "name": [{"family": "Zwicky"}],
        "birthDate": "1898-02-14",
        "generalPractitioner": [ref("Practitioner/prac-1")],
        "managingOrganization": ref("Organization/org-1"),
    },
    {
        "resourceType": "Patient",
        "id": "pat-2",
        "name": [{"family": "Meitner"}],
        "birthDate": "1878-11-07",
    },
    {"resourceType": "Organization", "id": "org-1", "name": "Radiology"},
    {"resourceType": "Practitioner", "id": "prac-1", "name": [{"family": "Curie"}]},
    {
        "resourceType": "PractitionerRole",
        "id": "pr-1",
        "practitioner": ref("Practitioner/prac-1"),
        "organization": ref("Organization/org-1"),
    },
    {"resourceType": "Device", "id": "dev-a", "owner": ref("Organization/org-1")},
    {"resourceType": "Device", "id": "dev-b", "owner": ref("Organization/org-1")},
    {
        "resourceType": "ImagingStudy",
        "id": "study-1",
        "status": "available",
        "subject": ref("Patient/pat-1"),
    },
    {
        "resourceType": "ImagingStudy",
        "id": "study-2",
        "status": "available",
        "subject": ref("Patient/pat-2"),
    },
    {
        "resourceType": "Observation",
        "id": "obs-a",
        "status": "final",
        "code": {"text": "dose"},
        "subject": ref("Patient/pat-1"),
        "device": ref("Device/dev-a"),
        "partOf": [ref("ImagingStudy/study-1")],
    },
    {
        "resourceType": "Observation",
        "id": "obs-b",
        "status": "final",
        "code": {"text": "dose"},
        "subject": ref("Patient/pat-2"),
        "device": ref("Device/dev-b"),
        "partOf": [ref("ImagingStudy/study-2")],
        "derivedFrom": [ref("Observation/obs-a")],
    },
    {
        "resourceType": "Procedure",
        "id": "proc-1",
        "status": "completed",
        "subject": ref("Patient/pat-2"),
        "partOf": [ref("Observation/obs-b")],
    },
    {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "subject": ref("Patient/pat-2"),
    },
    {
        "resourceType": "DetectedIssue",
        "id": "iss-a",
        "status": "preliminary",
        "patient": ref("Patient/pat-1"),
        "implicated": [ref("Observation/obs-a"), ref("Device/dev-a")],
    },
    {
        "resourceType": "DetectedIssue",
        "id": "iss-b",
        "status": "preliminary",
        "patient": ref("Patient/pat-2"),
        "implicated": [ref("Observation/obs-b"), ref("Device/dev-b")],
    },
    {
        "resourceType": "Subscription",
        "id": "sub-1",
        "status": "off",
        "reason": "alerts",
        "criteria": "DetectedIssue?status=preliminary",
        "channel": {"type": "rest-hook", "endpoint": "https://ris.example.org/hook"},
    },
    {
        "resourceType": "Communication",
        "id": "com-1",
        "status": "completed",
        "basedOn": [ref("DetectedIssue/iss-b")],
        "recipient": [ref("Practitioner/prac-1")],
    },
    {
        "resourceType": "Library",
        "id": "lib-1",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/library-type",
                    "code": "logic-library",
                }
            ]
        },
    },
    {
        "resourceType": "Task",
        "id": "task-1",
        "status": "failed",
        "intent": "order",
        "focus": ref("Observation/obs-b"),
    },
    {"resourceType": "ObservationDefinition", "id": "od-1", "code": {"text": "DLP"}},
    {
        "resourceType": "Group",
        "id": "grp-1",
        "type": "person",
        "actual": True,
        "member": [{"entity": ref("Patient/pat-1")}, {"entity": ref("Patient/pat-2")}],
    },
    {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "subject": ref("Patient/pat-2"),
        "content": [{"attachment": {"contentType": "text/plain", "data": "ZG9zZQ=="}}],
    },
    {"resourceType": "Measure", "id": "meas-1", "status": "active"},
    {
        "resourceType": "MeasureReport",
        "id": "mr-1",
        "status": "complete",
        "type": "summary",
        "measure": "https://kerma.example.org/Measure/meas-1",
        "period": PERIOD,
        "reporter": ref("Organization/org-1"),
        "evaluatedResource": [ref("Observation/obs-b")],
    },
    {
        "resourceType": "Provenance",
        "id": "prov-1",
        "target": [ref("Observation/obs-b")],
        "recorded": "2026-01-02T10:00:00Z",
        "agent": [{"who": ref("Device/dev-b")}],
    },
    {
        "resourceType": "Composition",
        "id": "comp-1",
        "status": "final",
        "type": {"text": "dose report"},
        "subject": ref("Patient/pat-2"),
        "date": "2026-01-02",
        "author": [ref("Device/dev-b")],
        "title": "Dose",
        "section": [{"title": "dose", "entry": [ref("Observation/obs-b")]}],
    },
    {
        "resourceType": "Bundle",
        "id": "bun-1",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d4f3b6e-8d0a-4a8e-9d7c-1f3f2b0c9e11",
                "resource": {"resourceType": "Organization", "name": "Radiology"},
            }
        ],
    },
]

DEVICE_OF = {
    f"{r['resourceType']}/{r['id']}": link["reference"]
    for r in SEEDS
    if r["resourceType"] in ("Observation", "DetectedIssue")
    for link in [r.get("device"), *r.get("implicated", [])]
    if link and link["reference"].startswith("Device/")
}


def may(role: str, action: str, rtype: str) -> bool:
    named = TABLE[role].get(action, [])
    return rtype in named or ("*" in named and rtype not in EXPLICIT_ONLY[action])


def bound(role: str) -> bool:
    return bool(TABLE[role].get("own_devices_only"))


def visible(role: str, rtype: str, rid: str | None) -> bool:
    device = DEVICE_OF.get(f"{rtype}/{rid}")
    return may(role, "read", rtype) and (not bound(role) or device in (None, OWN_DEVICE))


def writable(role: str, resource: Resource) -> bool:
    rtype, device = (
        resource["resourceType"],
        DEVICE_OF.get(f"{resource['resourceType']}/{resource.get('id')}"),
    )
    return may(role, "write", rtype) and (not bound(role) or device in (None, OWN_DEVICE))


def seeds_of(rtype: str) -> list[Resource]:
    return [r for r in SEEDS if r["resourceType"] == rtype]


def _envelope(node: Resource) -> bool:
    """A Bundle made for the answer (a search, a survey), not a stored one (stored ones have
    an id)."""
    return node["resourceType"] == "Bundle" and (node.get("type") in ENVELOPES or "id" not in node)


def resources_in(node: Any) -> Iterator[Resource]:
    """Every resource a response carries, at any depth (entries, contained, nested Bundles)."""
    if isinstance(node, dict):
        kind = node.get("resourceType")
        if kind and kind != "OperationOutcome" and not _envelope(node):
            yield node
        for value in node.values():
            yield from resources_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from resources_in(value)


def leaks(role: str, body: Any) -> list[str]:
    """What a response shows that the role may not see."""
    return [f"{r['resourceType']}/{r.get('id')}" for r in resources_in(body)
            if not visible(role, r["resourceType"], r.get("id"))]  # fmt: skip
