"""The skin dose map viewer: the map with its colour scale, contours and peak (the same figure
FHIR's $skin-dose-map gives), the study, the assumptions of the calculation, and downloads as
PNG, SVG and PDF. When no map could be made: why, and what the physicist can do."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, render_template

from server.api.http import audit_request
from server.calculated import observations as calculated
from server.calculated import skin_map
from server.console.study_view import value_text
from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of
from server.mappings import skin_dose_factors

bp = Blueprint("skin", __name__)
_FORMATS: dict[str, skin_map.Format] = {"png": "png", "svg": "svg", "pdf": "pdf"}


def _peak_skin_dose(rid: str) -> dict[str, Any]:
    """The peak skin dose Observation, if the user may see it (its reading audited)."""
    g.access.require("Observation")
    service: FhirService = current_app.extensions["kerma.fhir"]
    stored = service.read("Observation", rid)
    if not g.access.may_read(stored):
        raise FhirError.of(403, "forbidden", "this map is not from a device you work on")
    observation = body_of(stored)
    codes = {c.get("code") for c in observation.get("code", {}).get("coding", [])}
    if calculated.PEAK_SKIN_DOSE not in codes:
        raise FhirError.of(404, "not-found", f"Observation/{rid} is not a peak skin dose")
    if observation.get("subject"):
        audit_request(g.user, "read", [observation["subject"]["reference"]])
    return observation


@bp.get("/skin-dose-maps/<rid>")
def viewer(rid: str) -> str:
    observation = _peak_skin_dose(rid)
    grid = calculated.skin_dose_grid(observation)
    layout = calculated.skin_map_layout(observation) if grid is not None else None
    study = next((p["reference"] for p in observation.get("partOf", []) if "reference" in p), "")
    inputs = [(c["code"]["coding"][0].get("display", ""), value_text(c))
              for c in observation.get("component", []) if "valueSampledData" not in c]  # fmt: skip
    return render_template(
        "console/skin.html", rid=rid, observation=observation, has_map=grid is not None,
        peak=value_text(observation), where=skin_map.peak_place(grid, layout) if grid is not None and layout else "",
        study=study, inputs=inputs, contours=skin_dose_factors().thresholds_gy,
        absent=observation.get("dataAbsentReason", {}).get("text", ""),
        method=observation.get("method", {}).get("coding", [{}])[0].get("display", ""),
        note=" ".join(n.get("text", "") for n in observation.get("note", [])),
    )  # fmt: skip


@bp.get("/skin-dose-maps/<rid>.<fmt>")
def download(rid: str, fmt: str) -> Response:
    wanted = _FORMATS.get(fmt)
    if wanted is None:
        raise FhirError.of(404, "not-found", "a skin dose map is downloaded as png, svg or pdf")
    observation = _peak_skin_dose(rid)
    grid = calculated.skin_dose_grid(observation)
    if grid is None:
        raise FhirError.of(404, "not-found", "no map could be made for this examination")
    picture = skin_map.picture(grid, calculated.skin_map_layout(observation), skin_dose_factors().thresholds_gy,
                               observation.get("effectiveDateTime", "")[:10], wanted)  # fmt: skip
    name = f"skin-dose-map-{observation.get('effectiveDateTime', '')[:10] or rid}.{fmt}"
    return Response(picture, mimetype=skin_map.MEDIA[wanted],
                    headers={"Content-Disposition": f'inline; filename="{name}"'})  # fmt: skip
