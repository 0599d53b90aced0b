"""The department report for a period (requirement S4): per modality section, each standard
procedure and device with n, median, 75th percentile and the DRLs compared; the alerts of the
period and how they were handled; the timeline of CT medians and the modality load."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.stats import figures
from server.stats.service import UNITS, LeftOut, Query, Row, Statistics


@dataclass(frozen=True)
class Section:
    title: str
    unit: str
    rows: list[Row]
    query: Query  # what the rows answer (the report's Bundle has it as a MeasureReport)


@dataclass(frozen=True)
class Alert:
    identified: str
    severity: str
    kind: str
    detail: str
    status: str  # "open", or who acknowledged it with their comment


@dataclass(frozen=True)
class DepartmentReport:
    start: datetime
    end: datetime  # exclusive
    generated: str
    sections: list[Section]
    alerts: list[Alert]
    timeline_svg: str
    load_svg: str
    left_out: LeftOut  # QA examinations left out; unclassified ones, by name (the annex)


def department_report(
    stats: Statistics, service: FhirService, start: datetime, end: datetime, now: datetime
) -> DepartmentReport:
    period = (start.timestamp(), end.timestamp())
    sections = []
    for modality, quantity, level, title in stats.tables.report_sections:
        query = Query(quantity, level, ("procedure", "device"), *period, modality=modality)
        rows = stats.dose(query)
        if rows:
            sections.append(Section(title, UNITS[quantity], rows, query))
    ct = Query("dlp_mgy_cm", "study", ("month",), *period, modality="CT")
    timeline = figures.figure(stats, ct, "timeline", "month")
    load = figures.figure(stats, replace(ct, modality=""), "load")
    return DepartmentReport(start, end, instant(now.timestamp()), sections,
                            _alerts(service, start, end), timeline, load,
                            stats.left_out(Query("dlp_mgy_cm", "study", (), *period)))  # fmt: skip


def _alerts(service: FhirService, start: datetime, end: datetime) -> list[Alert]:
    pairs = [("identified", f"ge{start.isoformat()}"), ("identified", f"lt{end.isoformat()}"),
             ("_sort", "identified")]  # fmt: skip
    return [_alert(body_of(s)) for s in service.all_in(service.store, "DetectedIssue", pairs)]


def _alert(issue: dict[str, Any]) -> Alert:
    handled = "open"
    if issue.get("status") == "final" and issue.get("mitigation"):
        last = issue["mitigation"][-1]
        comment = next((e["valueString"] for e in last.get("extension", [])), "")
        handled = f"acknowledged by {last['author']['display']} {last['date'][:10]}" + (
            f": {comment}" if comment else ""
        )
    return Alert(issue.get("identifiedDateTime", "")[:16].replace("T", " "), issue.get("severity", ""),
                 issue["code"]["coding"][0]["display"], issue.get("detail", ""), handled)  # fmt: skip
