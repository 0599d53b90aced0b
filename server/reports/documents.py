"""Reports made and kept: the department report as PDF, stored as a FHIR DocumentReference
(the PDF as its attachment) so that it is found, listed and fetched like everything else."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from server.config import Settings
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.reports import render
from server.reports.department import department_report
from server.stats.service import site_statistics

REPORT_TYPE = "https://kerma.example.org/fhir/CodeSystem/report"


def department_pdf(
    service: FhirService, settings: Settings, start: datetime, end: datetime, now: datetime
) -> bytes:
    report = department_report(site_statistics(service, settings), service, start, end, now)
    return render.pdf("department.html", report=report)


def store_pdf(
    service: FhirService, pdf: bytes, kind: str, title: str, start: datetime, end: datetime
) -> str:
    """Keep a PDF as a DocumentReference; its reference."""
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": REPORT_TYPE, "code": kind}], "text": title},
        "date": instant(datetime.now().timestamp()),
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(pdf).decode(),
                    "size": len(pdf),
                    "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode(),  # FHIR's SHA-1
                    "title": f"{kind} {start.date()} to {end.date()}.pdf",
                }
            }
        ],
        "context": {
            "period": {"start": instant(start.timestamp()), "end": instant(end.timestamp())}
        },
    }
    return f"DocumentReference/{service.create_internal(document).rid}"


def pdf_of(service: FhirService, rid: str) -> bytes:
    """The PDF a DocumentReference holds."""
    document = body_of(service.read("DocumentReference", rid))
    return base64.b64decode(document["content"][0]["attachment"]["data"])
