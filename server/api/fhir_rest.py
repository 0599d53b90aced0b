"""The FHIR REST door (Flask blueprint at /fhir): HTTP in, service call, HTTP out.

Authentication, role checks and the audit trail happen here, around the service calls; the
query logic lives in `service` (shared with GraphQL). Every error leaves as an
OperationOutcome (see `init_app`'s handlers).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jsonpatch
import orjson
from flask import Blueprint, Flask, Response, current_app, g, request

from server.alerts import review
from server.alerts.monitoring import protocol_review
from server.api.http import (
    audit_trail_first,
    base_url,
    current_user,
    record,
    statistics,
    submitted,
)
from server.auth import audit
from server.auth.access import DEVICE_PARAMS, Access
from server.auth.audit_trail import AuditTrail
from server.auth.roles import Action
from server.calculated import observations as calculated
from server.calculated import skin_map
from server.classification import marks
from server.config import Settings
from server.exports import bulk
from server.fhir import bundles, mapping, registry, transaction
from server.fhir.capability import capability_statement, operation_definition
from server.fhir.errors import FhirError, outcome
from server.fhir.limits import check_nesting
from server.fhir.service import FhirService, body_of, check_type
from server.fhir.values import instant
from server.fhir.xml import XML_TYPES, from_xml, to_xml
from server.files import chunks
from server.jobs import tasks
from server.mappings import monitoring_table, skin_dose_factors, unit_table
from server.orders.reconcile import reconciliation
from server.patients import everything
from server.patients.identity import Patients
from server.site import site_context
from server.site.identity import About
from server.site.tables import rules_in_force
from server.stats import measures
from server.stats.service import cumulative_of, query_of
from server.store.port import Stored

FHIR_JSON = "application/fhir+json; charset=utf-8"
_JSON_TYPES = ("application/fhir+json", "application/json")
_PUBLIC_ENDPOINTS = ("fhir.metadata", "fhir.operation_definition_read")
# _format values and media types a client may ask for, and what Kerma answers in
_FORMATS = {"json": "json", "application/json": "json", "application/fhir+json": "json",
            "xml": "xml", **dict.fromkeys(XML_TYPES, "xml")}  # fmt: skip
_NOT_FHIR = ("graphql", "fhir.export_file", "fhir.export_status", "fhir.skin_dose_map")

bp = Blueprint("fhir", __name__)


def init_app(app: Flask, service: FhirService) -> None:
    app.extensions["kerma.fhir"] = service
    app.extensions["kerma.audit"] = AuditTrail(service)
    app.before_request(audit_trail_first)
    app.register_blueprint(bp, url_prefix="/fhir")


def _service() -> FhirService:
    return current_app.extensions["kerma.fhir"]  # type: ignore[no-any-return]


# -- authentication and authorisation ---------------------------------------------------------


@bp.before_request
def _negotiate() -> None:
    """JSON or XML, by `_format` (it wins) or the Accept header; 406 for what Kerma cannot
    produce. XML is made from the JSON answer on the way out (`_as_xml`)."""
    if request.endpoint in _NOT_FHIR:
        return
    wanted = request.args.get("_format")
    if wanted is not None:
        g.fhir_format = _FORMATS.get(wanted.split(";")[0].strip())
        if g.fhir_format is None:
            raise FhirError.of(
                406, "not-supported", f"_format {wanted!r}: Kerma answers json or xml"
            )
        return
    accept = request.accept_mimetypes
    best = accept.best_match([*_JSON_TYPES, *XML_TYPES])
    if best is None and accept and not accept.accept_json:
        raise FhirError.of(406, "not-supported", "Kerma answers application/fhir+json or "
                           "application/fhir+xml")  # fmt: skip
    g.fhir_format = _FORMATS.get(best or "", "json")


@bp.after_request
def _as_xml(response: Response) -> Response:
    if g.get("fhir_format") != "xml" or response.is_streamed:
        return response
    if not response.content_type.startswith(("application/fhir+json", "application/json")):
        return response
    body = response.get_data()
    if body:
        response.set_data(to_xml(orjson.loads(body)))
    response.content_type = "application/fhir+xml; charset=utf-8"
    return response


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in _PUBLIC_ENDPOINTS:
        return
    user = current_user(_service().store)
    g.user = user
    g.access = Access.of(user)
    g.role = g.access.role


def _require(action: Action, rtype: str) -> None:
    g.access.require(rtype, action)


def _visible(stored: Stored) -> Stored:
    """The resource, if the user's role may see it (radiographers: their devices' data)."""
    if not g.access.may_read(stored):
        raise FhirError.of(
            403, "forbidden", f"{stored.rtype}/{stored.rid} is not from one of your devices"
        )
    return stored


def _audit(interaction: str, disclosed: list[Stored]) -> None:
    patients = audit.patients_in(disclosed)
    if not patients:
        return
    event = audit.audit_event(
        g.user,
        interaction,
        patients,
        request.method,
        request.path,
        request.query_string.decode(errors="replace"),
        request.remote_addr,
        time.time(),
    )
    record(event)


# -- interactions -----------------------------------------------------------------------------


@bp.get("/metadata")
def metadata() -> Response:
    profiles = {"Observation": [mapping.RDS_PROFILE], "Device": [mapping.DEVICE_PROFILE]}
    return _json(capability_statement(base_url(), instant(time.time())[:10], profiles))


@bp.get("/OperationDefinition/<rid>")
def operation_definition_read(rid: str) -> Response:
    """Kerma's own OperationDefinitions (the CapabilityStatement points at them); public."""
    found = operation_definition(rid, base_url())
    if found is None:
        raise FhirError.of(404, "not-found", f"OperationDefinition/{rid} is not one of Kerma's")
    return _json(found)


@bp.post("")
@bp.post("/")
def batch_or_transaction() -> Response:
    """Every entry passes the user's gate: reads, searches and writes alike."""
    result, disclosed = transaction.process(
        _service(), _body(), base_url(), g.access, representation=_prefer("return") != "minimal"
    )
    _audit("batch", disclosed)
    return _json(result)


@bp.post("/Patient/<rid>/$unmerge")
def unmerge(rid: str) -> Response:
    """Undo the last merge of this (merged, inactive) Patient: its resources go back to it."""
    _require_operation("unmerge")
    service = _service()
    with service.store.transaction() as tx:
        done = _patients().unmerge(tx, rid, f"$unmerge by {g.user.name}")
    assert done.provenance is not None
    return _json(orjson.loads(service.read(*done.provenance.split("/")).body or b"{}"))


@bp.get("/Patient/<rid>/$everything")
def patient_everything(rid: str) -> Response:
    """The patient's record (every stored resource about them the role may read, not the audit
    trail) and their cumulative dose per modality over [start, end) (default: the last 365
    days), as computed Observations."""
    _require("read", "Patient")
    found = everything.record(_service(), rid, g.access.may_read)
    _audit("operation", found)
    words = {"quantity": "dlp_mgy_cm", "patient": f"Patient/{rid}",
             **{k: request.args[a] for a, k in (("start", "from"), ("end", "to")) if a in request.args}}  # fmt: skip
    stats = statistics()
    query = query_of(words, stats.ctx.timezone, datetime.now(UTC))
    start, end = stats.period(query)
    every = g.role.can("read", "Observation") and not g.role.own_devices_only
    rows = cumulative_of(_service(), stats, query) if every else []
    summaries = everything.cumulative_observations(f"Patient/{rid}", rows, start, end)
    resources = [body_of(s) for s in found] + summaries
    return _json(everything.bundle(resources, base_url(), instant(time.time())))


_PICTURES: dict[str, skin_map.Format] = {
    "png": "png", "image/png": "png", "svg": "svg", "image/svg+xml": "svg",
    "pdf": "pdf", "application/pdf": "pdf"}  # fmt: skip


@bp.get("/Observation/<rid>/$skin-dose-map")
def skin_dose_map(rid: str) -> Response:
    """The skin dose map of a peak skin dose Observation as a figure (colour scale in Gy,
    isodose contours, the peak, front and back on the body): PNG (the default), SVG or PDF, by
    `_format` (png, svg, pdf or the media type) or the Accept header."""
    _require("read", "Observation")
    stored = _visible(_service().read("Observation", rid))
    body = body_of(stored)
    grid = calculated.skin_dose_grid(body)
    if grid is None:
        raise FhirError.of(404, "not-found", f"Observation/{rid} has no skin dose map")
    wanted = request.args.get("_format") or request.accept_mimetypes.best_match(
        list(skin_map.MEDIA.values()), default="image/png"
    )
    fmt = _PICTURES.get(str(wanted))
    if fmt is None:
        raise FhirError.of(406, "not-supported", f"_format {wanted}: png, svg or pdf")
    _audit("operation", [stored])
    picture = skin_map.picture(grid, calculated.skin_map_layout(body), skin_dose_factors().thresholds_gy,
                               body.get("effectiveDateTime", "")[:10], fmt)  # fmt: skip
    return Response(picture, mimetype=skin_map.MEDIA[fmt])


@bp.post("/ImagingStudy/<rid>/$reassign")
def reassign(rid: str) -> Response:
    """Move a study, with its dose Observations and alerts, to another Patient and/or tie it
    to another ServiceRequest. Body: Parameters with `patient` and/or `serviceRequest`."""
    _require_operation("reassign")
    wanted = _reference_parameters(_body(), ("patient", "serviceRequest"))
    service = _service()
    with service.store.transaction() as tx:
        ref = _patients().reassign(
            tx,
            rid,
            wanted.get("patient"),
            wanted.get("serviceRequest"),
            f"$reassign by {g.user.name}",
        )
    provenance = orjson.loads(service.read(*ref.split("/")).body or b"{}")
    before = provenance["entity"][0]["what"]["reference"]
    patients = [r for r in (wanted.get("patient"), before) if r and r.startswith("Patient/")]
    event = audit.audit_event(
        g.user,
        "operation",
        patients,
        request.method,
        request.path,
        "",
        request.remote_addr,
        time.time(),
    )
    record(event)
    return _json(provenance)


@bp.post("/ImagingStudy/$reclassify")
def reclassify_studies() -> Response:
    """Classify every stored study again with the rules in force, in the background; 202 with
    the Task that follows it (Content-Location)."""
    _require_operation("reclassify")
    task = tasks.create(
        _service(), "reclassify", f"classify every study again, asked by {g.user.name}"
    )
    return submitted(task)


@bp.post("/ImagingStudy/<rid>/$mark-qa")
def mark_qa(rid: str) -> Response:
    """Mark a study as no patient examination (QA, phantom, service, test), or with Parameters
    `qa` false give it back to the classification rules; the study as stored."""
    _require_operation("mark-qa")
    body = _body() if request.get_data() else {"resourceType": "Parameters"}
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.of(400, "invalid", "send a Parameters resource (or nothing)")
    given = [
        p for p in body.get("parameter") or [] if isinstance(p, dict) and p.get("name") == "qa"
    ]
    if given and not isinstance(given[0].get("valueBoolean"), bool):
        raise FhirError.of(400, "invalid", "qa is a valueBoolean")
    qa = bool(given[0]["valueBoolean"]) if given else True
    service, settings = _service(), current_app.config["KERMA_SETTINGS"]
    rules = rules_in_force(service, settings)
    return _json(marks.mark_qa(service, rid, qa, g.user.name, rules, unit_table()))


@bp.get("/Measure/<rid>/$evaluate-measure")
def evaluate_measure(rid: str) -> Response:
    """A MeasureReport of one of Kerma's statistics for a period (periodStart, periodEnd as
    dates, both inclusive), stratified by `group` (as GET /stats/dose), filtered likewise."""
    _require("read", "MeasureReport")
    quantity, level = measures.definition(rid)
    service, settings = _service(), current_app.config["KERMA_SETTINGS"]
    if service.store.read("Measure", rid) is None:  # so that the report's canonical resolves
        service.update("Measure", rid, measures.measure(quantity, level, settings.fhir_base))
    args = {**request.args, "quantity": quantity, "level": level}
    args = {k: v for k, v in args.items() if k not in ("periodStart", "periodEnd")}
    if "periodStart" in request.args:
        args["from"] = request.args["periodStart"]
    if "periodEnd" in request.args:
        args["to"] = _next_day(request.args["periodEnd"])
    now = datetime.now().astimezone()
    query = query_of(args, site_context(settings).timezone, now, g.access.devices)
    stats = statistics()
    overall = stats.dose(replace(query, group_by=("modality",)))
    about = About.of(service, settings)
    return _json(measures.report(query, overall, stats.dose(query), now, stats, about))


def _next_day(text: str) -> str:
    try:
        return (date.fromisoformat(text) + timedelta(days=1)).isoformat()
    except ValueError:
        raise FhirError.of(400, "invalid", "periodEnd must be a date YYYY-MM-DD") from None


@bp.get("/$export")
def export_system() -> Response:
    """FHIR Bulk Data export of everything the role may export (async: 202, Content-Location)."""
    return _kick_off("system")


@bp.get("/Patient/$export")
def export_patients() -> Response:
    return _kick_off("patient")


@bp.get("/Group/<rid>/$export")
def export_group(rid: str) -> Response:
    _service().read("Group", rid)  # 404 now rather than a failed job later
    return _kick_off(f"group:{rid}")


def _kick_off(level: str) -> Response:
    """Check the request as the Bulk Data IG asks, then start the export as a job."""
    mode = g.role.bulk_export
    if mode == "none":
        raise FhirError.of(403, "forbidden", f"role {g.role.name} may not run $export")
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise FhirError.of(400, "invalid", "$export needs the header Prefer: respond-async")
    fmt = request.args.get("_outputFormat", "application/fhir+ndjson")
    if fmt not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        raise FhirError.of(400, "not-supported", f"_outputFormat {fmt!r}: Kerma writes ndjson")
    allowed = [t for t in registry.resource_types() if _exportable(t, mode)]
    if level != "system":
        allowed = [t for t in allowed if t in bulk.PATIENT_TYPES]
    wanted = [t for t in request.args.get("_type", "").split(",") if t] or allowed
    refused = [t for t in wanted if t not in allowed]
    if refused:
        raise FhirError.of(400, "invalid", f"_type: {', '.join(refused)} cannot be exported here")
    since = request.args.get("_since", "")
    if since:
        _service().parse_search("Patient", [("_lastUpdated", f"ge{since}")])  # 400 if no instant
    inputs = {"level": level, "types": ",".join(wanted), "since": since,
              "pseudonymise": str(mode == "pseudonymised").lower(), "request": request.url,
              "user": g.user.name}  # fmt: skip
    task = tasks.create(_service(), "bulk-export", f"$export by {g.user.name}", inputs)
    current_app.extensions["kerma.jobs"].submit(task["id"])
    status_url = f"{base_url()}/$export-status/{task['id']}"
    started = outcome([]) | {
        "issue": [_no_problem(f"export started: its status is at {status_url}")]
    }
    response = _json(started, 202)
    response.headers["Content-Location"] = status_url
    return response


def _exportable(rtype: str, mode: str) -> bool:
    """Pseudonymised exports give the patient data too (that is their point); otherwise what
    the role may read. Never the audit trail, never Kerma's own job records."""
    if rtype in ("AuditEvent", "Task", "Communication", "Subscription"):
        return False
    return g.role.can("read", rtype) or (mode == "pseudonymised" and rtype in bulk.PATIENT_TYPES)


@bp.route("/$export-status/<rid>", methods=["GET", "DELETE"])
def export_status(rid: str) -> Response:
    task = _export_task(rid)
    if request.method == "DELETE":
        shutil.rmtree(_export_dir(rid), ignore_errors=True)
        _service().delete("Task", rid)
        return Response(b"", 202)
    if task["status"] in ("requested", "in-progress"):
        progress = (task.get("businessStatus") or {}).get("text", task["status"])
        return Response(b"", 202, headers={"X-Progress": progress, "Retry-After": "2"})
    if task["status"] == "failed":
        raise FhirError.of(500, "exception", f"the export failed: {task['statusReason']['text']}")
    inputs = tasks.inputs_of(task)
    outputs = [o for o in task.get("output", []) if "valueInteger" in o]
    manifest = {
        "transactionTime": task["authoredOn"],
        "request": inputs.get("request", ""),
        "requiresAccessToken": True,
        "output": [{"type": o["type"]["text"], "count": o["valueInteger"],
                    "url": f"{base_url()}/$export-file/{rid}/{o['type']['text']}.ndjson"} for o in outputs],
        "error": [],
    }  # fmt: skip
    return Response(orjson.dumps(manifest), 200, content_type="application/json")


@bp.get("/$export-file/<rid>/<name>")
def export_file(rid: str, name: str) -> Response:
    """A file of an export (ndjson of $export, XLSX of a dose-facts export), streamed; each
    download is in the audit trail (the export, the file, who)."""
    _export_task(rid)
    path = _export_dir(rid) / name
    kind = _EXPORT_FILES.get(path.suffix)
    if kind is None or "/" in name or not path.is_file():
        raise FhirError.of(404, "not-found", f"no export file {name}")
    event = audit.audit_event(g.user, "operation", [], request.method, request.path, "",
                              request.remote_addr, time.time(), (f"Task/{rid}",))  # fmt: skip
    record(event)
    return Response(chunks(path), 200, content_type=kind)


_EXPORT_FILES = {
    ".ndjson": "application/fhir+ndjson",
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _export_task(rid: str) -> dict[str, Any]:
    """The export's Task, for its owner (or an admin) only."""
    stored = _service().store.read("Task", rid)
    task = body_of(stored) if stored and not stored.deleted else {}
    inputs = tasks.inputs_of(task)
    if task.get("code", {}).get("text") not in ("bulk-export", "export-xlsx", "export-csv"):
        raise FhirError.of(404, "not-found", f"no export {rid}")
    if inputs.get("user") != g.user.name and not g.role.manage_users:
        raise FhirError.of(403, "forbidden", "an export is for the user who asked for it")
    return task


def _export_dir(rid: str) -> Path:
    settings: Settings = current_app.config["KERMA_SETTINGS"]
    return settings.data_dir / "exports" / rid


@bp.post("/Task/<rid>/$retry")
def retry_task(rid: str) -> Response:
    """Run a failed Task again; 202 with the Task."""
    _require_operation("retry")
    return submitted(tasks.retry(_service(), rid))


@bp.post("/DetectedIssue/<rid>/$acknowledge")
def acknowledge(rid: str) -> Response:
    """Mark an alert reviewed (status final) with an optional comment (Parameters `comment`);
    a radiographer may do so for the devices they work on only."""
    _require_operation("acknowledge")
    body = _body() if request.get_data() else {"resourceType": "Parameters"}
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.of(400, "invalid", "send a Parameters resource (or nothing)")
    comment = next(
        (
            str(p.get("valueString", ""))
            for p in body.get("parameter") or []
            if isinstance(p, dict) and p.get("name") == "comment"
        ),
        "",
    )
    done = review.acknowledge(_service(), g.access, rid, g.user.name, comment, datetime.now(UTC))
    return _json(done)


@bp.get("/List/$reconcile")
def reconcile() -> Response:
    """Orders without dose data, dose data without orders, or patient mismatches, as a List."""
    for rtype in ("ImagingStudy", "ServiceRequest", "Patient"):
        _require("read", rtype)
    try:
        hours = float(request.args.get("hours", "24"))
    except ValueError:
        raise FhirError.of(400, "invalid", "hours must be a number") from None
    service = _service()
    listed, named = reconciliation(service, service.store, request.args.get("kind", ""), hours)
    _audit("operation", named)
    return _json(listed)


@bp.get("/List/$protocol-review")
def protocol_review_list() -> Response:
    """Duplicate protocols or differences between devices, from the dose facts, as a List."""
    _require("read", "Device")
    try:
        days = int(request.args.get("days", "90"))
    except ValueError:
        raise FhirError.of(400, "invalid", "days must be a whole number") from None
    listed = protocol_review(
        _service(),
        monitoring_table(),
        request.args.get("kind", ""),
        days,
        datetime.now().astimezone(),
    )
    return _json(listed)


def _require_operation(name: str) -> None:
    if name not in g.role.operations:
        raise FhirError.of(403, "forbidden", f"role {g.role.name} may not run ${name}")


def _patients() -> Patients:
    return Patients(_service(), site_context(current_app.config["KERMA_SETTINGS"]))


def _reference_parameters(body: Any, names: tuple[str, ...]) -> dict[str, str]:
    """valueReference parameters of a Parameters resource, by name."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.of(400, "invalid", "send a Parameters resource")
    found = {}
    for p in body.get("parameter") or []:
        ref = (p.get("valueReference") or {}).get("reference") if isinstance(p, dict) else None
        if isinstance(p, dict) and p.get("name") in names and isinstance(ref, str):
            found[p["name"]] = ref
    if not found:
        raise FhirError.of(
            400, "required", f"name at least one of {', '.join(names)} (valueReference)"
        )
    return found


@bp.get("/_history")
def history_system() -> Response:
    return _history(None, None)


@bp.get("/<rtype>")
def search(rtype: str) -> Response:
    return _search(rtype, list(request.args.items(multi=True)))


@bp.post("/<rtype>/_search")
def search_post(rtype: str) -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise FhirError.of(
            415, "not-supported", "POST _search takes application/x-www-form-urlencoded"
        )
    return _search(rtype, [*request.args.items(multi=True), *request.form.items(multi=True)])


@bp.put("/<rtype>")
def conditional_update(rtype: str) -> Response:
    """PUT Type?search: update the one match, create when none (412 for several)."""
    check_type(rtype)
    _require("write", rtype)
    query = request.query_string.decode()
    if not query:
        raise FhirError.of(400, "invalid", "a conditional update needs search parameters")
    body = _body()
    if not isinstance(body, dict):
        raise FhirError.of(400, "structure", "the body must be a JSON object")
    service = _service()
    with service.store.transaction() as tx:
        found = service.find_in(tx, rtype, query, "conditional update", g.access)
        if found is not None and body.get("id") not in (None, found.rid):
            raise FhirError.of(400, "invalid", f"the body's id {body.get('id')!r} is not the "
                               f"id of the match, {found.rid!r}")  # fmt: skip
        if found is not None:
            saved = service.update_in(tx, rtype, found.rid, {**body, "id": found.rid},
                                      request.headers.get("If-Match"), gate=g.access)  # fmt: skip
        elif body.get("id"):
            saved = service.update_in(tx, rtype, body["id"], body, gate=g.access)
        else:
            saved = service.create_in(tx, rtype, body, gate=g.access)
    return _saved_response(saved.stored, 201 if saved.created else 200)


@bp.delete("/<rtype>")
def conditional_delete(rtype: str) -> Response:
    """DELETE Type?search: delete the one match (204 also when none; 412 for several)."""
    check_type(rtype)
    _require("delete", rtype)
    query = request.query_string.decode()
    if not query:
        raise FhirError.of(400, "invalid", "a conditional delete needs search parameters")
    service = _service()
    with service.store.transaction() as tx:
        found = service.find_in(tx, rtype, query, "conditional delete", g.access)
        deleted = service.delete_in(tx, rtype, found.rid, g.access) if found else None
    headers = {"ETag": f'W/"{deleted.version}"'} if deleted else {}
    return Response(status=204, headers=headers)


@bp.patch("/<rtype>/<rid>")
def patch(rtype: str, rid: str) -> Response:
    """JSON Patch (RFC 6902, application/json-patch+json), with If-Match as for PUT."""
    check_type(rtype)
    _require("write", rtype)
    if request.mimetype != "application/json-patch+json":
        raise FhirError.of(415, "not-supported", "PATCH takes application/json-patch+json")
    operations = _json_patch(request.get_data())
    service = _service()
    with service.store.transaction() as tx:
        stored = tx.read(rtype, rid)
        if stored is None or stored.deleted:
            raise FhirError.of(
                404 if stored is None else 410, "not-found", f"{rtype}/{rid} is not here"
            )
        current = _visible(stored)
        try:
            patched = operations.apply(body_of(current))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            raise FhirError.of(422, "processing", f"the patch cannot be applied: {e}") from None
        saved = service.update_in(tx, rtype, rid, patched, request.headers.get("If-Match"),
                                  gate=g.access)  # fmt: skip
    return _saved_response(saved.stored, 200)


# RFC 6902 section 4: the members each operation needs besides op and path.
_PATCH_MEMBERS = {"add": ("value",), "remove": (), "replace": ("value",),
                  "move": ("from",), "copy": ("from",), "test": ("value",)}  # fmt: skip


def _json_patch(raw: bytes) -> jsonpatch.JsonPatch:
    """The body as a JSON Patch, its shape checked first: jsonpatch trusts its input."""
    try:
        operations = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise FhirError.of(400, "structure", f"not JSON: {e}") from None
    if not isinstance(operations, list):
        raise FhirError.of(400, "structure", "a JSON Patch is an array of operations")
    for at, operation in enumerate(operations):
        op = operation.get("op") if isinstance(operation, dict) else None
        if not isinstance(op, str) or op not in _PATCH_MEMBERS:
            raise FhirError.of(400, "structure", f"operation {at} has no known op")
        needs = ("path", *_PATCH_MEMBERS[operation["op"]])
        for member in needs:
            if member not in operation or (
                member != "value" and not isinstance(operation[member], str)
            ):
                raise FhirError.of(400, "structure", f"operation {at} needs {member!r}")
    try:
        return jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, jsonpatch.JsonPointerException) as e:
        raise FhirError.of(400, "structure", f"not a JSON Patch: {e}") from None


@bp.post("/<rtype>/$validate")
@bp.post("/<rtype>/<rid>/$validate")
def validate_resource(rtype: str, rid: str | None = None) -> Response:
    """$validate: the resource (or Parameters with `resource`, `mode`, `profile`) checked as a
    write would check it, and against a profile Kerma knows; an OperationOutcome, 200 whether
    or not it is valid."""
    check_type(rtype)
    body = _body()
    resource, mode, profile = _validate_parameters(body, rtype)
    if mode == "delete":
        if rid is None:
            raise FhirError.of(400, "invalid", "mode delete needs the resource's id")
        _require("delete", rtype)
        _service().read(rtype, rid)
        return _json(outcome([]) | {"issue": [_no_problem(f"{rtype}/{rid} may be deleted")]})
    _require("write" if mode in ("create", "update") else "read", rtype)
    if resource is None:
        raise FhirError.of(400, "required", "send the resource, or Parameters with `resource`")
    if rid is not None:
        resource = {**resource, "id": rid}
    issues = _service().check(resource, profile)
    if not issues:
        return _json(outcome([]) | {"issue": [_no_problem(f"{rtype} is valid")]})
    return _json(outcome(issues))


def _validate_parameters(body: Any, rtype: str) -> tuple[dict[str, Any] | None, str, str | None]:
    if not isinstance(body, dict):
        raise FhirError.of(400, "structure", "the body must be a resource or Parameters")
    if body.get("resourceType") != "Parameters":
        return body, "", request.args.get("profile")
    named = {p.get("name"): p for p in body.get("parameter") or [] if isinstance(p, dict)}
    resource = (named.get("resource") or {}).get("resource")
    mode = str((named.get("mode") or {}).get("valueCode", ""))
    profile = (named.get("profile") or {}).get("valueUri") or (named.get("profile") or {}).get(
        "valueCanonical"
    )
    if resource is not None and resource.get("resourceType") != rtype:
        raise FhirError.of(400, "invalid", f"the resource is a {resource.get('resourceType')}, "
                           f"not a {rtype}")  # fmt: skip
    return resource, mode, profile


def _no_problem(text: str) -> dict[str, str]:
    return {"severity": "information", "code": "informational", "diagnostics": text}


@bp.post("/<rtype>")
def create(rtype: str) -> Response:
    check_type(rtype)
    _require("write", rtype)
    saved = _service().create(rtype, _body(), request.headers.get("If-None-Exist"), g.access)
    return _saved_response(saved.stored, 201 if saved.created else 200)


@bp.get("/<rtype>/_history")
def history_type(rtype: str) -> Response:
    return _history(rtype, None)


@bp.get("/<rtype>/<rid>")
def read(rtype: str, rid: str) -> Response:
    check_type(rtype)
    _require("read", rtype)
    stored = _visible(_service().read(rtype, rid))
    etag = f'W/"{stored.version}"'
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag})
    _audit("read", [stored])
    return _resource_response(stored, 200)


@bp.put("/<rtype>/<rid>")
def update(rtype: str, rid: str) -> Response:
    check_type(rtype)
    _require("write", rtype)
    saved = _service().update(rtype, rid, _body(), request.headers.get("If-Match"), g.access)
    return _saved_response(saved.stored, 201 if saved.created else 200)


@bp.delete("/<rtype>/<rid>")
def delete(rtype: str, rid: str) -> Response:
    check_type(rtype)
    _require("delete", rtype)
    deleted = _service().delete(rtype, rid, g.access)
    headers = {"ETag": f'W/"{deleted.version}"'} if deleted else {}
    return Response(status=204, headers=headers)


@bp.get("/<rtype>/<rid>/_history")
def history_instance(rtype: str, rid: str) -> Response:
    return _history(rtype, rid)


@bp.get("/<rtype>/<rid>/_history/<vid>")
def vread(rtype: str, rid: str, vid: str) -> Response:
    check_type(rtype)
    _require("read", rtype)
    stored = _visible(_service().vread(rtype, rid, vid))
    _audit("vread", [stored])
    return _resource_response(stored, 200)


# -- helpers ----------------------------------------------------------------------------------


def _search(rtype: str, pairs: list[tuple[str, str]]) -> Response:
    check_type(rtype)
    _require("read", rtype)
    # FHIR R4 (search, handling of unknown parameters): ignored, and said so in the Bundle,
    # unless the client asks to be told off (Prefer: handling=strict)
    strict = _prefer("handling") == "strict"
    result = _service().search(rtype, pairs, strict=strict, gate=g.access)
    _audit("search-type", [*result.matches, *result.included])
    return Response(
        bundles.searchset(result, base_url(), rtype, time.time()), 200, content_type=FHIR_JSON
    )


def _history(rtype: str | None, rid: str | None) -> Response:
    if rtype is not None:
        check_type(rtype)
        _require("read", rtype)
    elif "*" not in g.role.read:
        raise FhirError.of(403, "forbidden", f"role {g.role.name} may not read the whole history")
    if rid is None and g.access.devices is not None and rtype in (None, *DEVICE_PARAMS):
        # a history of many resources would show (and count) other devices' versions
        raise FhirError.of(403, "forbidden", f"role {g.role.name} reads the history of one "
                           f"resource at a time, not of all {rtype or 'resources'}")  # fmt: skip
    current = _service().store.read(rtype or "", rid) if rid is not None else None
    if current is not None and not current.deleted:
        _visible(current)
    versions, total, count, offset = _service().history(
        rtype, rid, list(request.args.items(multi=True))
    )
    versions = [v for v in versions if v.body is None or g.access.may_read(v)]
    _audit("history-instance" if rid else "history-type" if rtype else "history-system", versions)
    url = base_url() + request.path.removeprefix("/fhir")
    body = bundles.history(versions, total, base_url(), url, count, offset, time.time())
    return Response(body, 200, content_type=FHIR_JSON)


def _body() -> Any:
    body = _parsed_body()
    check_nesting(body)
    return body


def _parsed_body() -> Any:
    if request.mimetype in XML_TYPES:
        return from_xml(request.get_data())
    if request.mimetype not in _JSON_TYPES:
        raise FhirError.of(
            415,
            "not-supported",
            f"send {_JSON_TYPES[0]} or {XML_TYPES[0]}, not {request.mimetype or 'no content type'}",
        )
    try:
        return orjson.loads(request.get_data())
    except orjson.JSONDecodeError as e:
        raise FhirError.of(400, "structure", f"the body is not valid JSON: {e}") from None


def _prefer(key: str) -> str | None:
    for part in request.headers.get("Prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == key:
            return value.strip().strip('"')
    return None


def _headers(stored: Stored) -> dict[str, str]:
    return {
        "ETag": f'W/"{stored.version}"',
        "Last-Modified": formatdate(stored.last_updated, usegmt=True),
        "Location": f"{base_url()}/{stored.rtype}/{stored.rid}/_history/{stored.version}",
    }


def _resource_response(stored: Stored, status: int) -> Response:
    summary, elements = request.args.get("_summary"), request.args.get("_elements")
    body: bytes = stored.body or b"{}"
    if summary not in (None, "false") or elements:
        shaped = bundles.subset(orjson.loads(body), summary, tuple((elements or "").split(",")))
        body = orjson.dumps(shaped)
    headers = _headers(stored)
    del headers["Location"]
    return Response(body, status, headers=headers, content_type=FHIR_JSON)


def _saved_response(stored: Stored, status: int) -> Response:
    prefer = _prefer("return")
    headers = _headers(stored)
    if prefer == "minimal":
        return Response(status=status, headers=headers)
    if prefer == "OperationOutcome":
        info = outcome([])
        info["issue"] = [
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"{stored.rtype}/{stored.rid} saved as version {stored.version}",
            }
        ]
        return Response(orjson.dumps(info), status, headers=headers, content_type=FHIR_JSON)
    return Response(stored.body, status, headers=headers, content_type=FHIR_JSON)


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, content_type=FHIR_JSON)
