"""Messages out: notifications (mail, webhooks) and outbound messages (dose results to the
RIS, forwarded dose reports, FHIR pushes) with their state, attempts and the reason a receiver
gave; a stopped one can be sent again (the same service as the FHIR API's Communications)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from server.fhir.errors import FhirError
from server.fhir.service import FhirService
from server.notify.delivery import deliveries, send_again
from server.notify.routing import NOTIFICATION_SYSTEM
from server.outbound.plan import OUTBOUND_SYSTEM

bp = Blueprint("messages", __name__)
STATES = ("", "preparation", "in-progress", "completed", "stopped")


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


@bp.get("/setup/messages")
def messages_page() -> str:
    status = request.args.get("status", "")
    if status not in STATES:
        raise FhirError.of(
            400, "invalid", "status is preparation, in-progress, completed or stopped"
        )
    found = deliveries(_service(), (OUTBOUND_SYSTEM, NOTIFICATION_SYSTEM), status)
    return render_template("console/setup_messages.html", messages=found, status=status,
                           states=STATES[1:], may_resend=_may_resend())  # fmt: skip


@bp.post("/setup/messages/<rid>/again")
def again(rid: str) -> ResponseReturnValue:
    g.access.require("Communication", "write")
    send_again(_service(), rid)
    flash("Queued again: it goes out within seconds.")
    return redirect(url_for("console.messages.messages_page", status="stopped"))


def _may_resend() -> bool:
    try:
        g.access.require("Communication", "write")
    except FhirError:
        return False
    return True
