"""FHIR Bulk Data export (system, Patient and Group level): the current resources of the
asked types, changed since `_since`, as one ndjson file per type, written by a background job;
pseudonymised (server/fhir/pseudonymise.py) where the role asks for it.

Files are read page by page and written line by line: memory stays bounded at any size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from server.fhir.pseudonymise import Precision, pseudonymised
from server.fhir.service import FhirService, body_of

# the types of the Patient compartment Kerma keeps, and the parameter naming the patient
PATIENT_TYPES = {
    "Patient": "_id",
    "ImagingStudy": "subject",
    "Observation": "subject",
    "DetectedIssue": "patient",
    "ServiceRequest": "subject",
    "Procedure": "subject",
}
_PAGE = 500


def export(
    service: FhirService,
    out_dir: Path,
    types: list[str],
    since: str,
    patients: list[str] | None,
    pseudonyms: tuple[bytes, Precision, bool] | None,
    progress: Callable[[int], None],
) -> dict[str, int]:
    """Write <type>.ndjson for each type with resources; the count per type. `patients`:
    Patient ids (Patient and Group level), None for everything; `pseudonyms`: the key, the
    date precision and whether descriptions are kept, of a pseudonymised export."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    done = 0
    for rtype in types:
        path = out_dir / f"{rtype}.ndjson"
        n = 0
        with path.open("wb") as out:
            for resource in _resources(service, rtype, since, patients):
                if pseudonyms is not None:
                    resource = pseudonymised(resource, *pseudonyms)
                out.write(orjson.dumps(resource) + b"\n")
                n += 1
                done += 1
                if done % 1000 == 0:
                    progress(done)
        if n:
            counts[rtype] = n
        else:
            path.unlink()
    return counts


def _resources(
    service: FhirService, rtype: str, since: str, patients: list[str] | None
) -> Iterator[dict[str, Any]]:
    base = [("_lastUpdated", f"ge{since}")] if since else []
    if patients is None:
        yield from _pages(service, rtype, base)
        return
    param = PATIENT_TYPES[rtype]
    for start in range(0, len(patients), 100):
        chunk = patients[start : start + 100]
        ids = chunk if param == "_id" else [f"Patient/{p}" for p in chunk]
        yield from _pages(service, rtype, [*base, (param, ",".join(ids))])


def _pages(
    service: FhirService, rtype: str, pairs: list[tuple[str, str]]
) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = service.search(rtype, [*pairs, ("_count", str(_PAGE)), ("_offset", str(offset))])
        yield from (body_of(s) for s in page.matches)
        if len(page.matches) < _PAGE:
            return
        offset += _PAGE
