"""What every HTTP door shares: who is asking (the bearer token), the FHIR base URL, and the
answer to a request that started a job (202 with the Task, its URL in Content-Location)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Response, current_app, request

from server.auth import audit
from server.auth.audit_trail import AuditTrail
from server.auth.users import authenticate
from server.fhir.errors import FhirError
from server.stats.service import Statistics, site_statistics
from server.store.port import Store, User


def current_user(store: Store) -> User:
    """The user of the request's bearer token (static or SMART); 401 when there is none."""
    user = authenticate(store, request.headers.get("Authorization"),
                        current_app.extensions["kerma.token_key"])  # fmt: skip
    if user is None:
        raise FhirError.of(
            401, "login", "a valid bearer token is required (Authorization: Bearer <token>)"
        )
    return user


def statistics() -> Statistics:
    """The statistics of the app's store and site, on the app's columnar copy of the facts."""
    settings = current_app.config["KERMA_SETTINGS"]
    return site_statistics(
        current_app.extensions["kerma.fhir"], settings, current_app.extensions["kerma.facts"]
    )


def audit_request(
    user: User, interaction: str, patients: list[str], objects: tuple[str, ...] = ()
) -> None:
    """The AuditEvent of this request having disclosed these patients' data."""
    event = audit.audit_event(user, interaction, patients, request.method, request.path,
                              request.query_string.decode(errors="replace"),
                              request.remote_addr, time.time(), objects)  # fmt: skip
    record(event)


def record(event: dict[str, Any]) -> None:
    """Keep an AuditEvent: queued now, written within 0.2 s (server/auth/audit_trail.py)."""
    trail: AuditTrail = current_app.extensions["kerma.audit"]
    trail.add(event)


def audit_trail_first() -> None:
    """Before a request that reads the audit trail: write what is queued, so it is there."""
    if "AuditEvent" in request.full_path or request.path.endswith("/_history"):
        current_app.extensions["kerma.audit"].flush()


def base_url() -> str:
    """The FHIR base URL for links: KERMA_BASE_URL, else from the request's Host."""
    configured = current_app.config.get("KERMA_BASE_URL")
    return str(configured).rstrip("/") if configured else request.host_url.rstrip("/") + "/fhir"


def submitted(task: dict[str, Any]) -> Response:
    """Run a requested Task in the background: 202 with the Task, Content-Location its URL."""
    current_app.extensions["kerma.jobs"].submit(task["id"])
    response = Response(orjson.dumps(task), 202, content_type="application/fhir+json")
    response.headers["Content-Location"] = f"{base_url()}/Task/{task['id']}"
    return response
