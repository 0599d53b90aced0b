"""The kinds of background work, by the code of their Task: what each runs, with the store
and settings of the process that runs it (an RQ worker or `kerma serve`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time

from server.config import Settings
from server.fhir import site_context
from server.fhir.reclassify import reclassify
from server.fhir.service import FhirService
from server.fhir.site_tables import site_tables
from server.jobs.daily import run_daily
from server.jobs.tasks import Progress, Work
from server.mappings import unit_table
from server.reports import documents


def kinds(service: FhirService, settings: Settings) -> dict[str, Work]:
    def reclassify_studies(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """Every stored study classified again with the rules in force now."""
        tables = site_tables(service, settings, max_age_s=0)
        rules = tables.context(site_context(settings)).rules
        counts = reclassify(service, rules, unit_table(), progress)
        return {**counts, "rulesVersion": rules.version}

    def daily(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """The daily run: monitoring and the review lists, as of `now` (ISO) or now."""
        now = datetime.fromisoformat(inputs["now"]) if "now" in inputs else datetime.now()
        found, digests = run_daily(service.store, settings, now.astimezone())
        return {"detectedIssues": len(found), "reviewLists": len(digests)}

    def department_report(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """The department report of [from, to) as PDF, kept as a DocumentReference."""
        start, end = (_local_day(inputs[name], settings) for name in ("from", "to"))
        pdf = documents.department_pdf(service, settings, start, end, datetime.now().astimezone())
        title = f"Department dose report {start.date()} to {end.date()}"
        return {"report": documents.store_pdf(service, pdf, "department", title, start, end)}

    return {
        "reclassify": reclassify_studies,
        "daily": daily,
        "report-department": department_report,
    }


def _local_day(text: str, settings: Settings) -> datetime:
    """The start of a day (YYYY-MM-DD) in the site's time zone."""
    return datetime.combine(date.fromisoformat(text), time(), site_context(settings).timezone)
