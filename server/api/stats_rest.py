"""Statistics over REST (/stats), as JSON or CSV (`format=csv`): for spreadsheets and BI
tools. Aggregates only: every role that may read MeasureReports (the authority role too)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request, stream_with_context

from server.api.http import current_user, record, statistics, submitted
from server.auth import audit
from server.auth.access import Access
from server.auth.roles import role
from server.dose.cumulative import QUANTITIES
from server.exports.rows import exporter
from server.fhir.errors import FhirError
from server.files import chunks
from server.jobs import reports, tasks
from server.reports import nhsbsp, survey, uk_radiography
from server.site import site_context
from server.site.identity import About
from server.stats import figures
from server.stats.columns import FactColumns
from server.stats.service import (
    UNITS,
    LeftOut,
    Proposal,
    Query,
    Row,
    alerts_of,
    cumulative_of,
    query_of,
)

bp = Blueprint("stats", __name__)


def init_app(app: Flask) -> None:
    store, settings = app.extensions["kerma.store"], app.config["KERMA_SETTINGS"]
    app.extensions["kerma.facts"] = {
        level: FactColumns(store, level, settings.facts_dir) for level in ("event", "study")
    }
    app.register_blueprint(bp, url_prefix="/stats")


@bp.before_request
def _authenticate() -> None:
    user = current_user(current_app.extensions["kerma.store"])
    g.user, g.role, g.access = user, role(user.role), Access.of(user)
    g.access.require("MeasureReport")  # the statistics are MeasureReports


@bp.get("/dose")
def dose() -> Response:
    """A dose quantity summarised per group: n, mean, sd, min, p25, median, p75, p95, max,
    and for standard procedures the DRLs that apply (ratio of the median to each)."""
    query = _query()
    stats = statistics()
    rows = stats.dose(query)
    header = [*_group_columns(query), "n", "mean", "sd", "min", "p25", "median", "p75", "p95",
              "max", "unit", "drl"]  # fmt: skip
    return _answer(query, [_dose_row(query, r) for r in rows], header, stats.left_out(query))


@bp.get("/load")
def load() -> Response:
    """Examinations (level=study) or irradiation events per group: by device, weekday, hour,
    procedure... (the quantity only selects which rows count: those that have it)."""
    query = _query()
    rows = [{**group, "n": n} for group, n in statistics().load(query)]
    return _answer(query, rows, [*_group_columns(query), "n"])


@bp.get("/drl-proposal")
def drl_proposal() -> Response:
    """Per standard procedure: the typical value (median) and a local DRL proposal (the 75th
    percentile of the device medians), beside the DRLs in force."""
    query = _query()
    stats = statistics()
    rows = [_proposal_row(query, p) for p in stats.drl_proposal(query)]
    header = ["procedure", "n", "devices", "typical_value", "proposal", "unit", "drl"]
    return _answer(query, rows, header, stats.left_out(query))


@bp.get("/devices")
def devices() -> Response:
    """Every device with its identity, and its examinations in the period (S2)."""
    query = _period_query()
    rows = statistics().devices(query)
    header = ["device", "name", "type", "manufacturer", "model", "station_name", "serial_number",
              "software_versions", "department", "examinations", "first", "last"]  # fmt: skip
    return _answer(query, rows, header)


@bp.get("/cumulative")
def cumulative() -> Response:
    """One patient's cumulative dose (H5): per modality, the examinations of [from, to) and the
    sums of DLP, DAP, Ka,r and AGD (with how many examinations had each). Patient data: for
    roles that read Observations, audited."""
    g.access.require_every_observation()
    query = _period_query()
    service = current_app.extensions["kerma.fhir"]
    rows = cumulative_of(service, statistics(), query)
    event = audit.audit_event(g.user, "operation", [query.patient], request.method, request.path,
                              request.query_string.decode(errors="replace"),
                              request.remote_addr, datetime.now().timestamp())  # fmt: skip
    record(event)
    header = [
        "modality",
        "examinations",
        "undated",
        *QUANTITIES,
        "effective_dose_msv_estimate",
        "first",
        "last",
    ]
    return _answer(query, rows, header)


@bp.get("/above-levels")
def above_levels() -> Response:
    """The alerts of the period: examinations above DRLs or alert levels, significant events,
    medians above DRLs and parameter drift, with how each was handled (S2)."""
    if not g.role.can("read", "DetectedIssue"):
        raise FhirError.of(403, "forbidden", f"role {g.role.name} may not read alerts")
    query = _period_query()
    rows = alerts_of(current_app.extensions["kerma.fhir"], statistics(), query)
    header = ["issue", "identified", "severity", "code", "device_name", "detail", "status"]
    return _answer(query, rows, header)


def _when(epoch: float | None) -> str | None:
    return (
        None
        if epoch is None
        else datetime.fromtimestamp(epoch, _timezone()).isoformat(timespec="seconds")
    )


@bp.get("/charts/<kind>.svg")
def chart(kind: str) -> Response:
    """timeline (median per `period`, month by default, with the DRLs of `procedure`), boxplot
    (per device), histogram, or load (examinations by weekday and hour), as SVG."""
    svg = figures.figure(statistics(), _query(), kind, request.args.get("period", "month"))
    return Response(svg, 200, content_type="image/svg+xml")


@bp.get("/export/<level>.<fmt>")
def export(level: str, fmt: str) -> Response:
    """Every row of the dose facts of `level` (study, event) as CSV (streamed) or XLSX,
    filtered like the statistics; pseudonymised, or identified (identified=true) for roles
    allowed to. Large XLSX exports: POST, as a job."""
    query, identified = _export_query(level, fmt)
    return export_file(query, fmt, identified)


def export_file(
    query: Query, fmt: str, identified: bool, studies: frozenset[str] | None = None
) -> Response:
    """The dose facts of the query (of these studies only) as a CSV (streamed) or an XLSX
    download, identified or pseudonymised."""
    settings = current_app.config["KERMA_SETTINGS"]
    made = exporter(current_app.extensions["kerma.fhir"], settings, identified)
    name = f"kerma-{query.level}s-{'identified' if identified else 'pseudonymised'}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return Response(stream_with_context(made.csv(query, studies)), 200, headers=headers,
                        content_type="text/csv; charset=utf-8")  # fmt: skip
    path = made.xlsx(query, studies)
    return Response(chunks(path, delete_after=True), 200, headers=headers, content_type=_XLSX)


@bp.post("/export/<level>.<fmt>")
def export_job(level: str, fmt: str) -> Response:
    """The same export made in the background (an XLSX of a million rows takes minutes): 202
    with the Task; its output `file` is the file's URL under /fhir/$export-file/."""
    _export_query(level, fmt)
    inputs = {
        k: v
        for k, v in request.args.items()
        if k in ("from", "to", "modality", "device", "procedure", "identified")
    }
    inputs |= {"level": level, "format": fmt, "user": g.user.name}
    if g.access.devices is not None:
        inputs["devices"] = ",".join(g.access.devices)
    service = current_app.extensions["kerma.fhir"]
    task = tasks.create(
        service,
        "export-xlsx" if fmt == "xlsx" else "export-csv",
        f"export asked by {g.user.name}",
        inputs,
    )
    return submitted(task)


def _export_query(level: str, fmt: str) -> tuple[Query, bool]:
    """The query of an export and whether it is identified; 404/403 as the role says."""
    if level not in ("study", "event") or fmt not in ("csv", "xlsx"):
        raise FhirError.of(404, "not-found", "exports: /stats/export/study|event.csv|xlsx")
    if not g.role.can("read", "Observation"):
        raise FhirError.of(403, "forbidden", f"role {g.role.name} reads aggregates only")
    identified = request.args.get("identified", "false") == "true"
    if identified and "export-identified" not in g.role.operations:
        raise FhirError.of(
            403, "forbidden", f"role {g.role.name} may export pseudonymised data only"
        )
    if identified:
        event = audit.audit_event(g.user, "operation", [], request.method, request.path,
                                  request.query_string.decode(errors="replace"),
                                  request.remote_addr, datetime.now().timestamp())  # fmt: skip
        record(event)
    query = _period_query()
    return replace(query, level=level), identified


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/survey.<fmt>")
def national_survey(fmt: str) -> Response:
    """The national DRL survey of [from, to): a Bundle of MeasureReports (json) or a PDF."""
    if fmt not in ("json", "pdf"):
        raise FhirError.of(404, "not-found", "the survey is survey.json or survey.pdf")
    reports.may_ask(g.access, "survey")
    query = _period_query()
    stats, now = statistics(), datetime.now().astimezone()
    start, end = (datetime.fromtimestamp(t, _timezone()) for t in (query.since, query.until))
    about = About.of(current_app.extensions["kerma.fhir"], current_app.config["KERMA_SETTINGS"])
    made = survey.make(stats, about, start, end, now)
    if fmt == "pdf":
        return Response(made.pdf(), 200, content_type="application/pdf")
    return Response(orjson.dumps(made.bundle), 200, content_type="application/fhir+json")


@bp.get("/survey/<name>.csv")
def survey_sheet(name: str) -> Response:
    """A survey an authority collects line by line, of [from, to), pseudonymised: nhsbsp (UK
    breast screening: one line per mammography exposure, the NCCPM database's layout) or
    uk-radiography (UKHSA: one line per radiography examination, the 2019 survey's layout)."""
    if name not in ("nhsbsp", "uk-radiography"):
        raise FhirError.of(404, "not-found", "surveys by line: nhsbsp.csv, uk-radiography.csv")
    reports.may_ask(g.access, "survey")
    query = _period_query()
    if name == "nhsbsp":
        store = current_app.extensions["kerma.store"]
        text = nhsbsp.csv_text(store, query.since, query.until, _timezone())
    else:
        service, settings = (
            current_app.extensions["kerma.fhir"],
            current_app.config["KERMA_SETTINGS"],
        )
        text = uk_radiography.csv_text(exporter(service, settings, False), query.since, query.until)
    return Response(text, 200, content_type="text/csv; charset=utf-8")


@bp.post("/reports/<kind>")
def make_report(kind: str) -> Response:
    """Make the department report or the national survey of [from, to) in the background: 202
    with the Task; its output `report` is the DocumentReference holding the PDF (and for the
    survey the Bundle): GET /stats/reports/<id>.pdf or .json."""
    reports.may_ask(g.access, kind)
    query = _period_query()
    start, end = (datetime.fromtimestamp(t, _timezone()).date() for t in (query.since, query.until))
    service = current_app.extensions["kerma.fhir"]
    return submitted(reports.ask(service, g.access, kind, start, end))


@bp.get("/reports/<id>.<fmt>")
def report_file(id: str, fmt: str) -> Response:  # the path parameter of the spec
    """A report Kerma made, as the PDF, or (the survey) the Bundle of MeasureReports."""
    data, content_type = reports.file_of(current_app.extensions["kerma.fhir"], g.access, id, fmt)
    return Response(data, 200, content_type=content_type)


def _query() -> Query:
    return query_of(request.args, _timezone(), datetime.now().astimezone(), g.access.devices)


def _period_query() -> Query:
    """The period and filters of a route whose quantity selects nothing (tables, reports,
    exports): the arguments checked as the statistics check them."""
    args = {"quantity": "dlp_mgy_cm", **request.args}
    return query_of(args, _timezone(), datetime.now().astimezone(), g.access.devices)


def _timezone() -> tzinfo:
    return site_context(current_app.config["KERMA_SETTINGS"]).timezone


def _group_columns(query: Query) -> list[str]:
    return [
        c
        for name in query.group_by
        for c in ((name, "device_name") if name == "device" else (name,))
    ]


def _dose_row(query: Query, row: Row) -> dict[str, Any]:
    s = row.summary
    numbers = {"n": s.n, "mean": s.mean, "sd": s.sd, "min": s.min, "p25": s.p25,
               "median": s.median, "p75": s.p75, "p95": s.p95, "max": s.max}  # fmt: skip
    return {**row.group, **numbers, "unit": UNITS[query.quantity], "drl": _levels(row.levels)}


def _proposal_row(query: Query, p: Proposal) -> dict[str, Any]:
    return {"procedure": p.procedure, "n": p.n, "devices": p.devices,
            "typical_value": p.typical_value, "proposal": p.proposal,
            "unit": UNITS[query.quantity], "drl": _levels(p.levels)}  # fmt: skip


def _levels(levels: Any) -> list[dict[str, Any]]:
    return [{"set": lv.set, "examination": lv.examination, "level": lv.level,
             "ratio": lv.reported_ratio, "within": lv.within} for lv in levels]  # fmt: skip


def _answer(
    query: Query, rows: list[dict[str, Any]], header: list[str], left_out: LeftOut | None = None
) -> Response:
    """JSON (the query, the rows and what they leave out) or CSV (the rows)."""
    if request.args.get("format", "json") == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "drl": _drl_text(row.get("drl", []))})
        return Response(out.getvalue(), 200, content_type="text/csv; charset=utf-8")
    meta: dict[str, Any] = {
        "quantity": query.quantity, "level": query.level, "group": list(query.group_by),
        "from": datetime.fromtimestamp(query.since).astimezone().isoformat(),
        "to": datetime.fromtimestamp(query.until).astimezone().isoformat()}  # fmt: skip
    if left_out is not None:  # examinations, whatever the level
        meta["left_out"] = {"qa": left_out.qa, "not_classified": [
            {"name": name, "n": n} for name, n in left_out.unclassified]}  # fmt: skip
    return Response(orjson.dumps({**meta, "rows": rows}), 200, content_type="application/json")


def _drl_text(levels: list[dict[str, Any]]) -> str:
    """DRL comparisons in one CSV cell: "UKHSA GB 2022 660 (1.36x)"."""
    return "; ".join(f"{lv['set']} {lv['level']:g} ({lv['ratio']:.2f}x)" for lv in levels)
