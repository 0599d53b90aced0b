"""Which new DetectedIssues go where: FHIR R4 Subscriptions on DetectedIssue.

A Subscription's criteria is a DetectedIssue search (`DetectedIssue?severity=high&device=
Device/ct1&_tag=<department>`); an issue matches when that search, narrowed to its id, finds
it, so routing uses the search code and nothing else. Every match becomes a Communication in
the same transaction as the issue: queued durably with it, and found by its identifier
(subscription + issue), so an issue is never queued twice for one subscription.
"""

from __future__ import annotations

from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of
from server.notify.subscriptions import criteria_pairs
from server.store.port import Transaction

NOTIFICATION_SYSTEM = "urn:kerma:notification"


def queue(service: FhirService, tx: Transaction, issue_refs: list[str]) -> list[str]:
    """A Communication (status preparation) per new issue and active Subscription it matches."""
    if not issue_refs:
        return []
    queued = []
    for stored in service.all_in(tx, "Subscription", [("status", "active")]):
        subscription = body_of(stored)
        try:
            pairs = criteria_pairs(subscription)
        except FhirError:
            continue  # refused when written; one stored before then is not served
        for ref in issue_refs:
            rid = ref.split("/", 1)[1]
            if not service.all_in(tx, "DetectedIssue", [("_id", rid), *pairs]):
                continue
            key = f"{stored.rid}/{rid}"
            if service.all_in(
                tx, "Communication", [("identifier", f"{NOTIFICATION_SYSTEM}|{key}")]
            ):
                continue
            communication = {
                "resourceType": "Communication",
                "identifier": [{"system": NOTIFICATION_SYSTEM, "value": key}],
                "basedOn": [{"reference": f"Subscription/{stored.rid}"}],
                "status": "preparation",
                "about": [{"reference": ref}],
            }
            created = service.create_in(tx, "Communication", communication, trusted=True)
            queued.append(f"Communication/{created.stored.rid}")
    return queued
