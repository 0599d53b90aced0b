"""The kinds of background work, by the code of their Task: what each runs, with the store
and settings of the process that runs it (an RQ worker or `kerma serve`)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime

from server.auth.keys import site_key
from server.classification.reclassify import reclassify
from server.config import Settings
from server.exports import bulk
from server.exports.rows import exporter
from server.fhir.pseudonymise import precision
from server.fhir.service import FhirService, body_of
from server.fhir.values import day_start
from server.jobs.daily import run_daily
from server.jobs.tasks import Progress, Work
from server.mappings import unit_table
from server.notify import routing
from server.reports import documents
from server.site import site_context
from server.site.tables import rules_in_force
from server.stats.service import query_of


def kinds(service: FhirService, settings: Settings) -> dict[str, Work]:
    def reclassify_studies(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """Every stored study classified again with the rules in force now."""
        rules = rules_in_force(service, settings, max_age_s=0)
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
        ref = documents.store(service, {"application/pdf": pdf}, "department", title, start, end)
        with service.store.transaction() as tx:  # mailed to whom subscribed to reports
            routing.queue(service, tx, [ref])
        return {"report": ref}

    def national_survey(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """The national DRL survey of [from, to) as PDF and Bundle, kept as a DocumentReference."""
        start, end = (_local_day(inputs[name], settings) for name in ("from", "to"))
        files = documents.survey_files(service, settings, start, end, datetime.now().astimezone())
        title = f"National DRL survey {start.date()} to {end.date()}"
        return {"report": documents.store(service, files, "survey", title, start, end)}

    def bulk_export(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """FHIR $export: ndjson files per type in data_dir/exports/<task id>."""
        patients: list[str] | None = None
        if inputs["level"] == "patient":
            patients = [s.rid for s in service.all_in(service.store, "Patient", [])]
        elif inputs["level"].startswith("group:"):
            group = service.read("Group", inputs["level"].removeprefix("group:"))
            members = body_of(group).get("member", [])
            patients = [str(m["entity"]["reference"]).removeprefix("Patient/") for m in members
                        if str(m["entity"].get("reference", "")).startswith("Patient/")]  # fmt: skip
        pseudonyms = (
            (
                site_key(settings),
                precision(settings.pseudonym_date_precision),
                settings.pseudonym_descriptions == "keep",
            )
            if inputs["pseudonymise"] == "true"
            else None
        )
        out = settings.data_dir / "exports" / inputs["task"]
        return bulk.export(service, out, inputs["types"].split(","), inputs.get("since", ""),
                           patients, pseudonyms, progress)  # fmt: skip

    def export_rows(inputs: dict[str, str], progress: Progress) -> Mapping[str, int | str]:
        """A dose-facts export (XLSX or CSV) written to data_dir/exports/<task id>."""
        now = datetime.now().astimezone()
        devices = tuple(inputs["devices"].split(",")) if inputs.get("devices") else None
        query = query_of({"quantity": "dlp_mgy_cm", **inputs}, site_context(settings).timezone,
                         now, devices)  # fmt: skip
        query = replace(query, level=inputs["level"])
        identified = inputs.get("identified") == "true"
        made = exporter(service, settings, identified)
        out = settings.data_dir / "exports" / inputs["task"]
        out.mkdir(parents=True, exist_ok=True)
        name = f"kerma-{inputs['level']}s-{'identified' if identified else 'pseudonymised'}.{inputs['format']}"
        if inputs["format"] == "xlsx":
            shutil.move(made.xlsx(query), out / name)
        else:
            with (out / name).open("w", encoding="utf-8") as text:
                text.writelines(made.csv(query))
        return {"file": f"$export-file/{inputs['task']}/{name}"}

    return {
        "export-xlsx": export_rows,
        "export-csv": export_rows,
        "reclassify": reclassify_studies,
        "daily": daily,
        "report-department": department_report,
        "report-survey": national_survey,
        "bulk-export": bulk_export,
    }


def _local_day(text: str, settings: Settings) -> datetime:
    """The start of a day (YYYY-MM-DD) in the site's time zone."""
    return day_start(date.fromisoformat(text), site_context(settings).timezone)
