"""The national DRL survey (requirements P1, P7): what authorities ask for, per standard
procedure and device: n, median and mean of CTDIvol, DLP, DAP, AGD, and of the patients'
weight where known. As a FHIR Bundle of MeasureReports (one per quantity, stratified by
procedure and device) and as a PDF with the same numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from server.dose.facts import NAMES
from server.fhir.values import instant
from server.reports import render
from server.site.identity import About
from server.stats.service import NOT_CLASSIFIED, UNITS, Query, Row, Statistics


def survey(stats: Statistics, start: datetime, end: datetime) -> list[tuple[Query, list[Row]]]:
    """Each quantity of the survey with its rows (procedure, device), where there are any."""
    found = []
    for quantity, level in stats.tables.survey:
        query = Query(quantity, level, ("procedure", "device"), start.timestamp(), end.timestamp())
        rows = [r for r in stats.dose(query)
                if r.group.get("procedure") not in (None, NOT_CLASSIFIED)]  # fmt: skip
        if rows:
            found.append((query, rows))
    return found


def pdf(
    tables: list[tuple[Query, list[Row]]],
    bundle: dict[str, Any],
    stats: Statistics,
    about: About,
    start: datetime,
    end: datetime,
    now: datetime,
) -> bytes:
    """The survey as PDF/A-3, with its Bundle of MeasureReports (measures.collection of the
    same tables) embedded."""
    sections = [(q.quantity, q.level, UNITS[q.quantity], rows) for q, rows in tables]
    left_out = stats.left_out(Query("dlp_mgy_cm", "study", (), start.timestamp(), end.timestamp()))
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2)
    return render.pdf("survey.html", [("survey-bundle.json", data)], sections=sections,
                      left_out=left_out,
                      names=NAMES, start=start, end=end, generated=instant(now.timestamp()),
                      site=about.site, drl_sets=about.drl_sets)  # fmt: skip
