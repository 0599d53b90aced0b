"""Queueing outbound messages: one Communication per destination for each change of a study's
dose (its dose summary read from one more source object), made in the transaction that stored
it, so a study stored is a message queued."""

from __future__ import annotations

import hashlib
from typing import Any

from server.fhir.service import FhirService
from server.files import write_durably
from server.outbound.plan import (
    DESTINATION_URL,
    DICOM_FORWARD,
    FHIR_PUSH,
    HL7_ORU,
    OBJECT_URL,
    OUTBOUND_SYSTEM,
    Destination,
    Plan,
)
from server.store.port import Transaction

_KIND_WORDS = {HL7_ORU: "dose results to the RIS (HL7 v2 ORU^R01)",
               DICOM_FORWARD: "the dose report forwarded (DICOM C-STORE)",
               FHIR_PUSH: "the dose summary pushed to a FHIR server"}  # fmt: skip


def queue_study(
    service: FhirService,
    tx: Transaction,
    plan: Plan,
    study_ref: str,
    patient_ref: str,
    summary: dict[str, Any],
) -> list[str]:
    """A Communication per study-level destination for this state of the study's dose."""
    sources = sorted(i["value"] for i in summary.get("identifier", []) if i.get("value"))
    state = hashlib.sha256("\n".join(sources).encode()).hexdigest()[:16]
    return [
        ref
        for destination in plan.destinations
        if destination.kind in (HL7_ORU, FHIR_PUSH)
        for ref in _queue(service, tx, destination, f"{study_ref}/{state}", study_ref, patient_ref)
    ]


def queue_forwards(
    service: FhirService,
    tx: Transaction,
    plan: Plan,
    refs: tuple[str, str],
    sop_instance_uid: str,
    data: bytes,
) -> list[str]:
    """The received object kept under the outbound folder, and a Communication per forwarding
    destination; `refs`: the study's and the patient's references."""
    forwards = plan.of_kind(DICOM_FORWARD)
    if not forwards:
        return []
    plan.folder.mkdir(parents=True, exist_ok=True)
    kept = plan.folder / f"{sop_instance_uid}.dcm"
    write_durably(kept, data)
    extension = [{"url": OBJECT_URL, "valueString": kept.name}]
    return [
        ref
        for destination in forwards
        for ref in _queue(service, tx, destination, sop_instance_uid, *refs, extension)
    ]


def _queue(
    service: FhirService,
    tx: Transaction,
    destination: Destination,
    what: str,
    study_ref: str,
    patient_ref: str,
    extension: list[dict[str, Any]] | None = None,
) -> list[str]:
    key = f"{destination.kind}/{destination.label}/{what}"
    if service.all_in(tx, "Communication", [("identifier", f"{OUTBOUND_SYSTEM}|{key}")]):
        return []  # queued already: this state was sent, or is on its way
    communication = {
        "resourceType": "Communication",
        "identifier": [{"system": OUTBOUND_SYSTEM, "value": key}],
        "status": "preparation",
        "category": [{"coding": [{"system": OUTBOUND_SYSTEM, "code": destination.kind}],
                      "text": _KIND_WORDS[destination.kind]}],
        "subject": {"reference": patient_ref},
        "about": [{"reference": study_ref}],
        "extension": [{"url": DESTINATION_URL, "valueString": destination.label},
                      *(extension or [])],
    }  # fmt: skip
    created = service.create_in(tx, "Communication", communication, trusted=True)
    return [f"Communication/{created.stored.rid}"]
