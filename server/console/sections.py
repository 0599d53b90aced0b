"""The console's main sections and what a role must read to open each: the navigation shows a
section only to roles that may open it (the authority gets Home, Analysis and Set-up, not links
it would be refused), and the section's page checks the same before anything else."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from server.auth.access import Access


@dataclass(frozen=True)
class Section:
    endpoint: str
    title: str
    reads: tuple[str, ...]  # resource types; the statistics are MeasureReports


SECTIONS = (
    Section("console.home.home", "Home", ()),
    Section("console.studies.studies_page", "Studies", ("Observation",)),
    Section("console.alerts.work_list", "Alerts", ("DetectedIssue",)),
    Section("console.analysis.analysis_page", "Analysis", ("MeasureReport",)),
    Section("console.classification.workbench_page", "Classification", ("Library", "ImagingStudy")),
    Section("console.reports.reports_page", "Reports", ("DocumentReference",)),
    Section("console.setup.devices_page", "Set-up", ("Device",)),
)
_BY_ENDPOINT = {s.endpoint: s for s in SECTIONS}


def open_to(access: Access) -> list[Section]:
    return [s for s in SECTIONS if all(access.role.can("read", t) for t in s.reads)]


def require_section() -> None:
    """Before a section's page: 403 unless the signed-in role may open it."""
    section = _BY_ENDPOINT.get(request.endpoint or "")
    if section is not None:
        for rtype in section.reads:
            g.access.require(rtype)
