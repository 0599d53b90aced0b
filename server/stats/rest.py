"""Statistics over REST (/stats), as JSON or CSV (`format=csv`): for spreadsheets and BI
tools. Aggregates only: every role that may read MeasureReports (the authority role too)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request

from server.auth.roles import role
from server.auth.users import authenticate
from server.fhir import site_context
from server.fhir.errors import FhirError
from server.fhir.site_tables import site_tables
from server.mappings import statistics_tables
from server.stats.columns import FactColumns
from server.stats.service import UNITS, Proposal, Query, Row, Statistics, query_of

bp = Blueprint("stats", __name__)


def init_app(app: Flask) -> None:
    store = app.extensions["kerma.store"]
    app.extensions["kerma.facts"] = {
        level: FactColumns(store, level) for level in ("event", "study")
    }
    app.register_blueprint(bp, url_prefix="/stats")


@bp.before_request
def _authenticate() -> None:
    user = authenticate(current_app.extensions["kerma.store"], request.headers.get("Authorization"))
    if user is None:
        raise FhirError.of(
            401, "login", "a valid bearer token is required (Authorization: Bearer <token>)"
        )
    g.user, g.role = user, role(user.role)
    if not g.role.can("read", "MeasureReport"):
        raise FhirError.of(403, "forbidden", f"role {g.role.name} may not read statistics")


@bp.get("/dose")
def dose() -> Response:
    """A dose quantity summarised per group: n, mean, sd, min, p25, median, p75, p95, max,
    and for standard procedures the DRLs that apply (ratio of the median to each)."""
    query = _query()
    rows = _statistics().dose(query)
    header = [*_group_columns(query), "n", "mean", "sd", "min", "p25", "median", "p75", "p95",
              "max", "unit", "drl"]  # fmt: skip
    return _answer(query, [_dose_row(query, r) for r in rows], header)


@bp.get("/load")
def load() -> Response:
    """Examinations (level=study) or irradiation events per group: by device, weekday, hour,
    procedure... (the quantity only selects which rows count: those that have it)."""
    query = _query()
    rows = [{**group, "n": n} for group, n in _statistics().load(query)]
    return _answer(query, rows, [*_group_columns(query), "n"])


@bp.get("/drl-proposal")
def drl_proposal() -> Response:
    """Per standard procedure: the typical value (median) and a local DRL proposal (the 75th
    percentile of the device medians), beside the DRLs in force."""
    query = _query()
    rows = [_proposal_row(query, p) for p in _statistics().drl_proposal(query)]
    header = ["procedure", "n", "devices", "typical_value", "proposal", "unit", "drl"]
    return _answer(query, rows, header)


def _query() -> Query:
    settings = current_app.config["KERMA_SETTINGS"]
    return query_of(request.args, site_context(settings).timezone, datetime.now().astimezone())


def _statistics() -> Statistics:
    settings = current_app.config["KERMA_SETTINGS"]
    service = current_app.extensions["kerma.fhir"]
    ctx = site_tables(service, settings).context(site_context(settings))
    facts = current_app.extensions["kerma.facts"]
    return Statistics(service.store, ctx, statistics_tables(), facts.__getitem__)


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
             "ratio": round(lv.ratio, 4), "within": lv.within} for lv in levels]  # fmt: skip


def _answer(query: Query, rows: list[dict[str, Any]], header: list[str]) -> Response:
    if request.args.get("format", "json") == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "drl": _drl_text(row.get("drl", []))})
        return Response(out.getvalue(), 200, content_type="text/csv; charset=utf-8")
    meta = {"quantity": query.quantity, "level": query.level, "group": list(query.group_by),
            "from": datetime.fromtimestamp(query.since).astimezone().isoformat(),
            "to": datetime.fromtimestamp(query.until).astimezone().isoformat()}  # fmt: skip
    return Response(orjson.dumps({**meta, "rows": rows}), 200, content_type="application/json")


def _drl_text(levels: list[dict[str, Any]]) -> str:
    """DRL comparisons in one CSV cell: "UKHSA GB 2022 660 (1.36x)"."""
    return "; ".join(f"{lv['set']} {lv['level']:g} ({lv['ratio']:.2f}x)" for lv in levels)
