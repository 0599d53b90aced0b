"""A stored FHIR resource as JSON in the browser, as the API would give it to the same user
(the links of the console's pages; the API itself wants a bearer token, a browser has none)."""

from __future__ import annotations

import orjson
from flask import Blueprint, current_app, g, render_template

from server.api.http import audit_request, base_url
from server.auth import audit
from server.fhir.errors import FhirError
from server.fhir.service import check_type

bp = Blueprint("resources", __name__)


@bp.get("/resources/<rtype>/<rid>")
def resource_page(rtype: str, rid: str) -> str:
    check_type(rtype)
    g.access.require(rtype)
    stored = current_app.extensions["kerma.fhir"].read(rtype, rid)
    if not g.access.may_read(stored):
        raise FhirError.of(403, "forbidden", f"{rtype}/{rid} is not one you may see")
    patients = audit.patients_in([stored])
    if patients:
        audit_request(g.user, "read", patients)
    text = orjson.dumps(orjson.loads(stored.body or b"{}"), option=orjson.OPT_INDENT_2).decode()
    return render_template("console/resource.html", rtype=rtype, rid=rid, text=text,
                           url=f"{base_url()}/{rtype}/{rid}")  # fmt: skip
