"""The alerts work list: open alerts by severity and age, the reason with its values and units,
acknowledging with a comment (the same service as FHIR's $acknowledge), and who handled what.
The link in alert e-mails opens one alert here (after signing in)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from server.alerts import review
from server.api.http import audit_request, statistics
from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of
from server.stats.service import Query

bp = Blueprint("alerts", __name__)
STATES = {"open": "preliminary", "acknowledged": "final"}
_COMMENT_CHARS = 2000


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


@bp.get("/alerts")
def work_list() -> str:
    state = request.args.get("state", "open")
    severity = request.args.get("severity", "")
    device = request.args.get("device", "")
    if state not in STATES or severity not in ("", *review.SEVERITY_ORDER):
        raise FhirError.of(
            400, "invalid", "state is open or acknowledged; severity high, moderate or low"
        )
    alerts = review.work_list(_service(), g.access, STATES[state], severity, device)
    _audit(alerts)
    stats = statistics()
    return render_template("console/alerts.html", alerts=alerts, state=state, severity=severity,
                           device=device, devices=stats.devices(_every_device()),
                           device_name=stats.device_name, now=datetime.now(UTC),
                           may_acknowledge=_may_acknowledge(), single=False)  # fmt: skip


@bp.get("/alerts/<rid>")
def alert_page(rid: str) -> str:
    g.access.require("DetectedIssue")
    stored = _service().read("DetectedIssue", rid)
    if not g.access.may_read(stored):
        raise FhirError.of(403, "forbidden", "the alert is not about a device you work on")
    alert = review.Alert.of(stored.rid, body_of(stored))
    _audit([alert])
    return render_template("console/alerts.html", alerts=[alert], state="", severity="", device="",
                           devices=[], device_name=statistics().device_name, now=datetime.now(UTC),
                           may_acknowledge=_may_acknowledge(), single=True)  # fmt: skip


@bp.post("/alerts/<rid>/acknowledge")
def acknowledge(rid: str) -> ResponseReturnValue:
    if not _may_acknowledge():
        raise FhirError.of(
            403, "forbidden", f"role {g.access.role.name} may not acknowledge alerts"
        )
    comment = request.form.get("comment", "").strip()[:_COMMENT_CHARS]
    review.acknowledge(_service(), g.access, rid, g.user.name, comment, datetime.now(UTC))
    flash("Alert acknowledged" + (" with your comment." if comment else "."))
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/alerts") else url_for("console.alerts.work_list"))


def _may_acknowledge() -> bool:
    return "acknowledge" in g.access.role.operations


def _every_device() -> Query:
    return Query("dlp_mgy_cm", "study", (), devices=g.access.devices or ())


def _audit(alerts: list[review.Alert]) -> None:
    patients = sorted({a.patient for a in alerts if a.patient})
    if patients:
        audit_request(g.user, "search-type", patients)
