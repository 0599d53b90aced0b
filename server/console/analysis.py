"""The analysis page: for a dose quantity, chosen by standard procedure (code or name), device,
modality and period, the timeline of medians with the DRLs, box plots per device, the
histogram, the load per weekday and hour, and the DRL compliance of every procedure. The
charts are the ones REST serves (server/stats/figures.py), drawn for the user's devices."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, render_template, request

from server.api.http import statistics
from server.fhir.errors import FhirError
from server.stats import figures
from server.stats.service import UNITS, Query, Statistics, query_of

bp = Blueprint("analysis", __name__)
LEVELS = {"study": "per examination", "event": "per irradiation event"}
_ARGS = ("quantity", "level", "modality", "device", "procedure", "from", "to")


@bp.get("/analysis")
def analysis_page() -> str:
    stats = statistics()
    args = _arguments(stats)
    try:
        q = _query(stats, args)
    except FhirError as e:
        q, problem = None, e.issues[0].diagnostics
    else:
        problem = ""
    every = replace(q or _query(stats, {}), procedure="", device="", modality="")
    names = stats.counts(every, "procedure")
    procedures = sorted(
        ((name, _code(stats, name), n) for name, n in names.items() if name != "None"),
        key=lambda p: -p[2],
    )
    compliance = []
    if q is not None:
        rows = stats.dose(replace(q, group_by=("procedure",), procedure=""))
        compliance = [r for r in rows if r.levels]
    return render_template(
        "console/analysis.html",
        args=args,
        query=q,
        problem=problem,
        chart_args={k: v for k, v in args.items() if v},
        kinds=figures.KINDS,
        periods=figures.PERIODS,
        quantities=[(field, figures.label(field)) for field in UNITS],
        levels=LEVELS,
        procedures=procedures,
        modalities=sorted(stats.counts(every, "modality")),
        devices=stats.devices(every),
        compliance=compliance,
        drl_sets=sorted({lv.set for r in compliance for lv in r.levels}),
    )


@bp.get("/analysis/<kind>.svg")
def chart(kind: str) -> Response:
    """One chart of the page's choice (an <img> of the page), or as a download."""
    stats = statistics()
    args = _arguments(stats)
    svg = figures.figure(stats, _query(stats, args), kind, args["period"])
    return Response(svg, 200, content_type="image/svg+xml")


def _arguments(stats: Statistics) -> dict[str, str]:
    """The page's choices as sent, a procedure given by its code turned into its name."""
    args = {name: request.args.get(name, "").strip() for name in (*_ARGS, "period")}
    args["quantity"] = args["quantity"] or "dlp_mgy_cm"
    args["period"] = args["period"] if args["period"] in figures.PERIODS else "month"
    named = stats.ctx.rules.procedure(args["procedure"])
    if named is not None:
        args["procedure"] = named.name
    return args


def _query(stats: Statistics, args: dict[str, Any]) -> Query:
    """The statistics query of the choices, for the devices the user may see."""
    now = datetime.now().astimezone()
    wanted = {"quantity": "dlp_mgy_cm", **{k: v for k, v in args.items() if v}}
    return query_of(wanted, stats.ctx.timezone, now, g.access.devices)


def _code(stats: Statistics, name: str) -> str:
    procedure = stats.ctx.rules.named(name)
    return procedure.code if procedure else ""
