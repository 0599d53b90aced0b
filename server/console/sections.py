"""The console's sections (the main ones and set-up's) and what a role must read to open each:
the navigation shows a section only to roles that may open it (the authority gets Home,
Analysis and Set-up, not links it would be refused), and the section's page checks the same
before anything else."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from server.auth.access import Access
from server.fhir.errors import FhirError


@dataclass(frozen=True)
class Section:
    endpoint: str
    title: str
    reads: tuple[str, ...]  # resource types; the statistics are MeasureReports
    manages_users: bool = False

    def opens_for(self, access: Access) -> bool:
        may_read = all(access.role.can("read", t) for t in self.reads)
        return may_read and (access.role.manage_users or not self.manages_users)


SECTIONS = (
    Section("console.home.home", "Home", ()),
    Section("console.studies.studies_page", "Studies", ("Observation",)),
    Section("console.alerts.work_list", "Alerts", ("DetectedIssue",)),
    Section("console.analysis.analysis_page", "Analysis", ("MeasureReport",)),
    Section("console.classification.workbench_page", "Classification", ("Library", "ImagingStudy")),
    Section("console.reports.reports_page", "Reports", ("DocumentReference",)),
    Section("console.setup.devices_page", "Set-up", ("Device",)),
)
SETUP = (
    Section("console.setup.devices_page", "Devices", ("Device",)),
    Section("console.setup.levels_page", "Reference levels", ("ObservationDefinition",)),
    Section("console.setup.alerts_page", "Alerts and routing", ("Subscription",)),
    Section("console.setup.users_page", "People", (), manages_users=True),
    Section("console.messages.messages_page", "Messages out", ("Communication",)),
)
_BY_ENDPOINT = {s.endpoint: s for s in (*SECTIONS, *SETUP)}


def open_to(access: Access, sections: tuple[Section, ...] = SECTIONS) -> list[Section]:
    return [s for s in sections if s.opens_for(access)]


def require_section() -> None:
    """Before a section's page (the page itself checks nothing more): 403 unless the
    signed-in role may open it."""
    section = _BY_ENDPOINT.get(request.endpoint or "")
    if section is None:
        return
    for rtype in section.reads:
        g.access.require(rtype)  # 403 naming the type
    if section.manages_users:
        require_user_admin()


def require_user_admin() -> None:
    if not g.access.role.manage_users:
        raise FhirError.of(403, "forbidden", f"role {g.access.role.name} does not manage users")
