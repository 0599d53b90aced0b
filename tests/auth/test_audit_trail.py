"""The audit trail's writer: events queued by requests are written by its thread, and stopping
writes the rest and ends the thread before the store closes (a write racing the close
crashed the test process: SQLite used after close from another thread)."""

from __future__ import annotations

import threading
import time

from server.auth.audit_trail import WRITE_EVERY_S, AuditTrail
from server.fhir import FhirService


def _event(n: int) -> dict[str, object]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2026-12-04T10:00:00Z",
        "agent": [{"requestor": True, "who": {"display": f"user-{n}"}}],
        "source": {"observer": {"display": "kerma"}},
    }


def _writers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "kerma-audit" and t.is_alive()}


def _count(service: FhirService) -> int:
    return len(service.all_in(service.store, "AuditEvent", []))


def test_queued_events_are_written_by_the_writer(service: FhirService) -> None:
    """The writer thread writes what a request queued, without a stop or another request
    (every WRITE_EVERY_S; waited for generously: a loaded CI machine is slow, and speed is
    no test's business)."""
    trail = AuditTrail(service)
    trail.add(_event(1))
    assert _count(service) == 0  # queued, not written by the request
    deadline = time.monotonic() + 100 * WRITE_EVERY_S
    while _count(service) == 0 and time.monotonic() < deadline:
        time.sleep(WRITE_EVERY_S)
    assert _count(service) == 1
    trail.stop()


def test_stop_writes_the_rest_and_ends_the_thread(service: FhirService) -> None:
    before = _writers()
    trail = AuditTrail(service)
    for n in range(5):
        trail.add(_event(n))
    trail.stop()
    assert _count(service) == 5
    assert _writers() <= before
    trail.add(_event(6))  # a request finishing after the stop: written at once
    assert _count(service) == 6
