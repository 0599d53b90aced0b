"""Which patients an AuditEvent names: read from the stored bytes, checked against a walk of
every parsed resource that two ingested dose reports and the authorization world leave."""

from __future__ import annotations

from typing import Any

import orjson

from server.auth.audit import patients_in
from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.store.port import Store
from tests.auth.ways_out import SEEDS
from tests.fhir.test_bulk_export import SIEMENS
from tests.ingest.test_drl_checks import PHILIPS


def _walked(node: Any) -> list[str]:
    """Every `reference` to a Patient anywhere in the resource, versions cut off."""
    if isinstance(node, list):
        return [ref for item in node for ref in _walked(item)]
    if not isinstance(node, dict):
        return []
    found = []
    ref = node.get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/"):
        found.append(ref.split("/_history", 1)[0])
    return found + [ref for value in node.values() for ref in _walked(value)]


def test_the_patients_of_every_stored_resource(
    store: Store, settings: Settings, service: FhirService
) -> None:
    ingestor = build_ingestor(store, settings)
    ingestor.ingest_file(PHILIPS)
    ingestor.ingest_file(SIEMENS)
    with store.transaction() as tx:
        for resource in SEEDS:
            service.update_in(tx, resource["resourceType"], resource["id"], resource, trusted=True)
        versioned = {
            "resourceType": "Provenance",
            "id": "v",
            "target": [{"reference": "Patient/pat-2/_history/3"}],
            "recorded": "2026-01-01T00:00:00Z",
            "agent": [{"who": {"display": "x"}}],
        }
        service.update_in(tx, "Provenance", "v", versioned, trusted=True)
    stored, _ = store.history(None, None, None, 10_000, 0)
    checked = [s for s in stored if s.body is not None and s.rtype != "AuditEvent"]
    assert len(checked) > 50
    named = 0
    for s in checked:
        expected = _walked(orjson.loads(s.body or b""))
        if s.rtype == "Patient":
            expected.insert(0, f"Patient/{s.rid}")
        assert patients_in([s]) == list(dict.fromkeys(expected)), f"{s.rtype}/{s.rid}"
        named += bool(expected)
    assert named > 20
    assert patients_in(checked[:0]) == []
