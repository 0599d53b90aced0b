"""Load FHIR JSON from files: a single resource, or a batch/transaction Bundle."""

from __future__ import annotations

from collections import Counter
from typing import Any

from server.fhir import transaction
from server.fhir.errors import FhirError
from server.fhir.service import FhirService


class NotFhir(ValueError):
    """JSON that is not a FHIR resource at all (no resourceType)."""


def load_json(service: FhirService, data: Any, base: str = "urn:kerma") -> str:
    """Store `data`; returns a one-line summary. A resource with an id is stored under that id."""
    if not isinstance(data, dict) or "resourceType" not in data:
        raise NotFhir("not a FHIR resource (no resourceType)")
    if data["resourceType"] == "Bundle" and data.get("type") in ("transaction", "batch"):
        result, _ = transaction.process(service, data, base, representation=False)
        statuses = Counter(e["response"]["status"].split(" ")[0] for e in result["entry"])
        failed = sum(n for status, n in statuses.items() if not status.startswith("2"))
        if failed:
            raise FhirError.of(
                422, "processing", f"{failed} batch entries failed: {dict(statuses)}"
            )
        return f"{data['type']} of {len(result['entry'])} entries: " + ", ".join(
            f"{n}x {status}" for status, n in sorted(statuses.items())
        )
    rtype = data["resourceType"]
    saved = service.update(rtype, data["id"], data) if "id" in data else service.create(rtype, data)
    return f"{rtype}/{saved.stored.rid} version {saved.stored.version}"
