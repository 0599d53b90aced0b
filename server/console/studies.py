"""The studies table (filters, sorting, paging, CSV/XLSX of the current filter) and a study's
page: its patient, procedure and classification, events, DRL comparison, alerts and
calculated values, with links to the FHIR resources."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from server.api.http import audit_request, statistics
from server.api.stats_rest import export_file
from server.classification import marks
from server.console import study_view
from server.fhir.errors import FhirError
from server.fhir.service import FhirService
from server.mappings import unit_table
from server.site.tables import rules_in_force
from server.stats.service import Query
from server.stats.studies import (
    DOSES,
    SORTS,
    Listing,
    StudyPage,
    StudyUids,
    every_study,
    studies,
    studies_with_alerts,
    with_links,
)

bp = Blueprint("studies", __name__)
PAGE_SIZES = (25, 50, 100)
ALERT_STATES = {"": "any", "open": "open alerts", "acknowledged": "acknowledged alerts",
                "none": "no alerts"}  # fmt: skip


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Filters:
    """The studies page's form, as sent (GET), checked."""

    modality: str = ""
    device: str = ""
    procedure: str = ""
    start: str = ""  # YYYY-MM-DD
    end: str = ""  # YYYY-MM-DD, inclusive
    dose: str = ""
    low: str = ""
    high: str = ""
    patient: str = ""  # a patient ID
    alerts: str = ""
    sort: str = "date"
    order: str = "desc"
    page: int = 1
    size: int = 50

    @classmethod
    def of(cls, args: Any) -> Filters:
        wanted = {name: str(args.get(name, "")).strip() for name in cls.__dataclass_fields__}
        page, size = _integer(wanted.pop("page"), 1), _integer(wanted.pop("size"), 50)
        found = cls(**{k: v for k, v in wanted.items() if v}, page=max(page, 1),
                    size=size if size in PAGE_SIZES else 50)  # fmt: skip
        if found.sort not in SORTS or found.order not in ("asc", "desc"):
            raise FhirError.of(400, "invalid", f"sort by one of {', '.join(SORTS)}, asc or desc")
        if found.alerts not in ALERT_STATES or (found.dose and found.dose not in DOSES):
            raise FhirError.of(400, "invalid", "unknown alert state or dose quantity")
        return found

    def link(self, **changes: Any) -> str:
        """The query string of these filters with some changed (paging, sorting)."""
        values = {**self.__dict__, **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})

    def period(self, zone: ZoneInfo) -> tuple[float, float]:
        since = _day(self.start, "from", zone) if self.start else -math.inf
        until = _day(self.end, "to", zone) + 86400 if self.end else math.inf
        return since, until


def _integer(text: str, default: int) -> int:
    return int(text) if text.isdigit() else default


def _day(text: str, name: str, zone: ZoneInfo) -> float:
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), zone).timestamp()
    except ValueError:
        raise FhirError.of(400, "invalid", f"{name} must be a date (YYYY-MM-DD)") from None


def _number(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise FhirError.of(400, "invalid", f"{name} must be a number") from None


def _listing(f: Filters) -> Listing:
    """The listing the filters ask for, as the user may see it."""
    g.access.require("Observation")
    settings = current_app.config["KERMA_SETTINGS"]
    since, until = f.period(ZoneInfo(settings.timezone))
    query = Query("dlp_mgy_cm", "study", (), since, until, f.modality, f.device, f.procedure,
                  devices=g.access.devices or ())  # fmt: skip
    listing = Listing(query, f.dose, _number(f.low, "the lowest dose"), _number(f.high, "the highest dose"),
                      sort=f.sort, descending=f.order == "desc",
                      offset=(f.page - 1) * f.size, count=f.size)  # fmt: skip
    if f.patient:
        g.access.require("Patient")
        found = _service().all_in(
            _service().store, "Patient", [("identifier", f.patient)], gate=g.access
        )
        listing = replace(listing, patients=tuple(f"Patient/{s.rid}" for s in found))
    if f.alerts in ("open", "acknowledged"):
        status = "preliminary" if f.alerts == "open" else "final"
        listing = replace(
            listing, studies=studies_with_alerts(_service(), g.access, status, _uids())
        )
    elif f.alerts == "none":
        listing = replace(listing, exclude=studies_with_alerts(_service(), g.access, "", _uids()))
    return listing


def _uids() -> StudyUids:
    """The app's memory of the Study Instance UIDs of ImagingStudies (made by init_app)."""
    known: StudyUids = current_app.extensions["kerma.study_uids"]
    return known


@bp.get("/studies")
def studies_page() -> str:
    f = Filters.of(request.args)
    stats = statistics()
    listing = _listing(f)
    page: StudyPage = studies(stats, listing)
    pages = max(1, math.ceil(page.total / f.size))
    if f.page > pages:  # beyond the end (the list got shorter): the last page
        f = replace(f, page=pages)
        page = studies(stats, replace(listing, offset=(pages - 1) * f.size))
    patient_ids = g.access.role.can("read", "Patient")
    rows = with_links(_service(), g.access, page.rows, patient_ids)
    if patient_ids and rows:
        audit_request(g.user, "search-type", sorted({r.patient for r in rows if r.patient}))
    everything = Query("dlp_mgy_cm", "study", (), devices=g.access.devices or ())
    return render_template(
        "console/studies.html", f=f, rows=rows, total=page.total, doses=DOSES,
        pages=pages, sizes=PAGE_SIZES, alert_states=ALERT_STATES,
        modalities=sorted(stats.counts(everything, "modality")),
        procedures=sorted(stats.counts(everything, "procedure")),
        devices=stats.devices(replace(everything, since=0.0)), patient_ids=patient_ids,
        identified="export-identified" in g.access.role.operations,
    )  # fmt: skip


@bp.get("/studies/export.<fmt>")
def export(fmt: str) -> Response:
    """The current filter's studies as dose-facts rows (CSV or XLSX): identified for roles that
    may export so, else pseudonymised."""
    if fmt not in ("csv", "xlsx"):
        raise FhirError.of(404, "not-found", "export as csv or xlsx")
    f = Filters.of(request.args)
    listing = _listing(f)
    uids = frozenset(r.study_uid for r in every_study(statistics(), listing))
    identified = "export-identified" in g.access.role.operations
    if identified:
        audit_request(g.user, "operation", [])
    return export_file(listing.query, fmt, identified, uids)


@bp.get("/studies/<rid>")
def study_page(rid: str) -> str:
    service = _service()
    view = study_view.of(service, g.access, rid, statistics())
    if view.patient_ref:
        audit_request(g.user, "read", [view.patient_ref])
    return render_template(
        "console/study.html", v=view, fhir=current_app.config["KERMA_BASE_URL"] or "/fhir",
        may_mark="mark-qa" in g.access.role.operations,
    )  # fmt: skip


@bp.post("/studies/<rid>/mark-qa")
def mark_qa(rid: str) -> ResponseReturnValue:
    """The study marked as no patient examination, or given back to the rules ($mark-qa)."""
    if "mark-qa" not in g.access.role.operations:
        raise FhirError.of(403, "forbidden", f"role {g.access.role.name} may not mark studies")
    qa = request.form.get("qa", "true") != "false"
    service, settings = _service(), current_app.config["KERMA_SETTINGS"]
    rules = rules_in_force(service, settings)
    marks.mark_qa(service, rid, qa, g.user.name, rules, unit_table())
    flash("Marked as no patient examination." if qa else "Classified by the rules again.")
    return redirect(url_for("console.studies.study_page", rid=rid))
