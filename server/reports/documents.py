"""Reports made and kept: the department report (PDF) and the national survey (PDF and the
Bundle of MeasureReports), stored as FHIR DocumentReferences (the files as attachments) so
that they are found, listed and fetched like everything else."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from server.config import Settings
from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.reports import render, survey
from server.reports.department import department_report
from server.site.identity import About
from server.stats import measures
from server.stats.service import site_statistics

REPORT_TYPE = "https://kerma.example.org/fhir/CodeSystem/report"
FHIR_JSON = "application/fhir+json"
SUFFIXES = {"application/pdf": "pdf", FHIR_JSON: "json"}


def department_pdf(
    service: FhirService, settings: Settings, start: datetime, end: datetime, now: datetime
) -> bytes:
    """The department report as PDF/A-3 with the MeasureReports of its tables embedded."""
    stats = site_statistics(service, settings)
    report = department_report(stats, service, start, end, now)
    tables = [(section.query, section.rows) for section in report.sections]
    about = About.of(service, settings)
    bundle = orjson.dumps(
        measures.collection(tables, stats, now, about), option=orjson.OPT_INDENT_2
    )
    return render.pdf("department.html", [("department-report-bundle.json", bundle)],
                      report=report, site=about.site, drl_sets=about.drl_sets)  # fmt: skip


def survey_files(
    service: FhirService, settings: Settings, start: datetime, end: datetime, now: datetime
) -> dict[str, bytes]:
    """The national survey of [start, end) as a PDF and as the Bundle of MeasureReports that
    goes to the authority, with the same numbers."""
    stats, about = site_statistics(service, settings), About.of(service, settings)
    made = survey.make(stats, about, start, end, now)
    return {"application/pdf": made.pdf(), FHIR_JSON: orjson.dumps(made.bundle)}


def store(
    service: FhirService,
    files: dict[str, bytes],
    kind: str,
    title: str,
    start: datetime,
    end: datetime,
) -> str:
    """Keep a report's files (by content type) as one DocumentReference; its reference."""
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": REPORT_TYPE, "code": kind}], "text": title},
        "date": instant(datetime.now().timestamp()),
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": content_type,
                    "data": base64.b64encode(data).decode(),
                    "size": len(data),
                    "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),  # FHIR's SHA-1
                    "title": f"{kind} {start.date()} to {end.date()}.{SUFFIXES[content_type]}",
                }
            }
            for content_type, data in files.items()
        ],
        "context": {
            "period": {"start": instant(start.timestamp()), "end": instant(end.timestamp())}
        },
    }
    return f"DocumentReference/{service.create_internal(document).rid}"


@dataclass(frozen=True)
class Made:
    """A report Kerma made and keeps."""

    id: str
    kind: str
    title: str
    made: str  # instant
    start: str
    end: str
    formats: tuple[str, ...]  # suffixes: pdf, json


def reports(service: FhirService) -> list[Made]:
    """Every report kept, the newest first."""
    pairs = [("type", f"{REPORT_TYPE}|"), ("_sort", "-date")]
    found = []
    for stored in service.all_in(service.store, "DocumentReference", pairs):
        body = body_of(stored)
        period = body.get("context", {}).get("period", {})
        found.append(Made(stored.rid, body["type"]["coding"][0]["code"], body.get("description", ""),
                          body.get("date", ""), period.get("start", ""), period.get("end", ""),
                          tuple(SUFFIXES[c["attachment"]["contentType"]] for c in body["content"])))  # fmt: skip
    return found


def kept_report(service: FhirService, rid: str) -> tuple[str, dict[str, Any]]:
    """What report a DocumentReference holds (department, survey), and the DocumentReference;
    404 when it is no report Kerma made."""
    document = body_of(service.read("DocumentReference", rid))
    for coding in document.get("type", {}).get("coding", []):
        if coding.get("system") == REPORT_TYPE:
            return str(coding["code"]), document
    raise FhirError.of(404, "not-found", f"DocumentReference/{rid} is no report Kerma made")


def file_in(document: dict[str, Any], suffix: str) -> tuple[bytes, str]:
    """A report's file of that suffix (pdf, json) and its content type; 404 when it has none."""
    for content in document.get("content", []):
        attachment = content["attachment"]
        if SUFFIXES.get(attachment.get("contentType")) == suffix:
            return base64.b64decode(attachment["data"]), attachment["contentType"]
    raise FhirError.of(404, "not-found", f"DocumentReference/{document['id']} has no {suffix} file")
