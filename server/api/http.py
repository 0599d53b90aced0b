"""Answering a request that started a job: 202 with the Task, its URL in Content-Location
(the FHIR operations and the statistics routes answer alike)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app, request


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
