"""Reports asked for by people (REST and the console): who may ask for which, and the Task
that makes it in the background. The report ends as a DocumentReference (the Task's output
`report`); server/reports/documents.py lists and serves them."""

from __future__ import annotations

from datetime import date
from typing import Any

from server.auth.access import Access
from server.fhir.errors import FhirError
from server.fhir.service import FhirService
from server.jobs import tasks
from server.reports import documents

# kind: (job kind, what it is)
KINDS = {
    "department": ("report-department", "department dose report"),
    "survey": ("report-survey", "national DRL survey"),
}


def may_ask(access: Access, kind: str) -> None:
    """403 unless the user may have that report: site-wide reports are for roles that see
    every device; the department report lists the alerts, so it needs reading them."""
    if access.devices is not None:
        raise FhirError.of(403, "forbidden", f"role {access.role.name} sees some devices only, "
                           "not the reports of the site")  # fmt: skip
    if kind not in KINDS:
        raise FhirError.of(404, "not-found", f"reports: {', '.join(KINDS)}")
    if kind == "department" and not access.role.can("read", "DetectedIssue"):
        raise FhirError.of(
            403, "forbidden", f"role {access.role.name} may not read the alerts a report lists"
        )


def file_of(service: FhirService, access: Access, rid: str, suffix: str) -> tuple[bytes, str]:
    """A kept report's file, for a user who may have that kind of report (the department
    report of every device is not a radiographer's to download, whoever made it)."""
    kind, document = documents.kept_report(service, rid)
    may_ask(access, kind)
    return documents.file_in(document, suffix)


def ask(service: FhirService, access: Access, kind: str, start: date, end: date) -> dict[str, Any]:
    """The requested Task making the report of days [start, end); submit it to run."""
    may_ask(access, kind)
    if not start < end:
        raise FhirError.of(400, "invalid", "the period's start must be before its end")
    code, what = KINDS[kind]
    inputs = {"from": start.isoformat(), "to": end.isoformat()}
    return tasks.create(service, code, f"{what} asked by {access.user.name}", inputs)
