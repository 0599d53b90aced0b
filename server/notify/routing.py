"""Which new DetectedIssues (and reports) go where: FHIR R4 Subscriptions.

A Subscription's criteria is a search (`DetectedIssue?severity=high&device=
Device/ct1&_tag=<department>`); an issue matches when that search, narrowed to its id, finds
it, so routing uses the search code and nothing else. Every match becomes a Communication in
the same transaction as the issue: queued durably with it, and found by its identifier
(subscription + issue), so an issue is never queued twice for one subscription.
"""

from __future__ import annotations

from datetime import date

from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of
from server.site.subscriptions import criteria, is_digest
from server.store.port import Transaction

NOTIFICATION_SYSTEM = "urn:kerma:notification"


def queue(service: FhirService, tx: Transaction, refs: list[str]) -> list[str]:
    """A Communication (status preparation) per new resource (an alert, a report) and active
    Subscription it matches."""
    if not refs:
        return []
    queued = []
    for stored in service.all_in(tx, "Subscription", [("status", "active")]):
        subscription = body_of(stored)
        if is_digest(subscription):
            continue  # sent once a day by queue_digests
        try:
            topic, pairs = criteria(subscription)
        except FhirError:
            continue  # refused when written; one stored before then is not served
        for ref in refs:
            rtype, rid = ref.split("/", 1)
            if rtype != topic or not service.all_in(tx, rtype, [("_id", rid), *pairs]):
                continue
            queued += _queue(service, tx, f"{stored.rid}/{rid}", stored.rid, [ref])
    return queued


def queue_digests(service: FhirService, day: date) -> list[str]:
    """For each daily-digest Subscription: one Communication naming every DetectedIssue its
    criteria find that is still to review (status preliminary); none when there is none."""
    queued = []
    with service.store.transaction() as tx:
        for stored in service.all_in(tx, "Subscription", [("status", "active")]):
            subscription = body_of(stored)
            if not is_digest(subscription):
                continue
            try:
                topic, pairs = criteria(subscription)
            except FhirError:
                continue
            if topic != "DetectedIssue":
                continue
            pairs.append(("status", "preliminary"))
            found = service.all_in(tx, "DetectedIssue", pairs)
            refs = [f"DetectedIssue/{s.rid}" for s in found]
            if refs:
                key = f"{stored.rid}/digest/{day.isoformat()}"
                queued += _queue(service, tx, key, stored.rid, refs)
    return queued


def _queue(
    service: FhirService, tx: Transaction, key: str, subscription_id: str, about: list[str]
) -> list[str]:
    """The Communication of one notification, unless one with that key exists."""
    if service.all_in(tx, "Communication", [("identifier", f"{NOTIFICATION_SYSTEM}|{key}")]):
        return []
    communication = {
        "resourceType": "Communication",
        "identifier": [{"system": NOTIFICATION_SYSTEM, "value": key}],
        "basedOn": [{"reference": f"Subscription/{subscription_id}"}],
        "status": "preparation",
        "about": [{"reference": ref} for ref in about],
    }
    created = service.create_in(tx, "Communication", communication, trusted=True)
    return [f"Communication/{created.stored.rid}"]
