"""The reports page: ask for the department report or the national survey of a period (made
in the background, as over REST), watch it being made, download the PDF and the FHIR Bundle,
and find the earlier ones."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from server.console.progress import REFRESH_S, task_view
from server.fhir.errors import FhirError
from server.fhir.service import FhirService
from server.jobs import reports
from server.reports import documents

bp = Blueprint("reports", __name__)


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


@bp.get("/reports")
def reports_page() -> str:
    task = request.args.get("task", "")
    today = date.today()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    return render_template(
        "console/reports.html",
        kinds=reports.KINDS,
        task=task_view(_service(), task) if task else None,
        refresh_s=REFRESH_S,
        made=documents.reports(_service()),
        start=last_month_end.replace(day=1).isoformat(),
        end=last_month_end.isoformat(),
        may_ask={kind: _may_ask(kind) for kind in reports.KINDS},
    )


@bp.post("/reports")
def ask_for_report() -> ResponseReturnValue:
    """Make a report of the days from `start` to `end`, both included."""
    kind = request.form.get("kind", "")
    reports.may_ask(g.access, kind)  # before the form's dates: a refusal says why
    try:
        start = date.fromisoformat(request.form.get("start", ""))
        end = date.fromisoformat(request.form.get("end", ""))
    except ValueError:
        raise FhirError.of(400, "invalid", "the period's days are YYYY-MM-DD") from None
    task = reports.ask(_service(), g.access, kind, start, end + timedelta(days=1))
    current_app.extensions["kerma.jobs"].submit(task["id"])
    return redirect(url_for("console.reports.reports_page", task=task["id"]), 303)


@bp.get("/reports/<rid>.<fmt>")
def report_file(rid: str, fmt: str) -> Response:
    g.access.require("DocumentReference")
    data, content_type = reports.file_of(_service(), g.access, rid, fmt)
    name = f"kerma-report-{rid}.{fmt}"
    return Response(data, 200, content_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def _may_ask(kind: str) -> bool:
    try:
        reports.may_ask(g.access, kind)
    except FhirError:
        return False
    return True
