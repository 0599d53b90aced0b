"""The DRL survey (requirements P1, P7), as a FHIR Bundle of MeasureReports (one per quantity,
stratified) and as a PDF/A-3 with the same numbers and the Bundle embedded. With a national
survey chosen (KERMA_SURVEY: reports/national.py) it is the authority's: its examinations,
population, minimum per room and units. Without one it is Kerma's own: per standard
procedure and device n, median and mean of CTDIvol, DLP, DAP, AGD and the patients' weight."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from server.dose.facts import NAMES
from server.fhir.values import instant
from server.mappings import survey_rules
from server.reports import national, render
from server.site.identity import About
from server.stats import measures
from server.stats.service import NOT_CLASSIFIED, UNITS, LeftOut, Query, Row, Statistics


@dataclass(frozen=True)
class Made:
    bundle: dict[str, Any]
    pdf: Callable[[], bytes]  # rendered when asked (WeasyPrint takes seconds)
    tables: int
    rows: int


def make(stats: Statistics, about: About, start: datetime, end: datetime, now: datetime) -> Made:
    """The site's survey of [start, end): the national one chosen, or Kerma's own."""
    if about.survey:
        return _national(stats, about, start, end, now)
    found = _own(stats, start, end)
    bundle = measures.collection(found, stats, now, about)
    sections = [(q.quantity, q.level, UNITS[q.quantity], rows) for q, rows in found]
    return Made(bundle, lambda: render.pdf(
        "survey.html", [_attached(bundle)], sections=sections, left_out=_left_out(stats, start, end),
        names=NAMES, start=start, end=end, generated=instant(now.timestamp()), site=about.site,
        drl_sets=about.drl_sets), len(found), sum(len(rows) for _, rows in found))  # fmt: skip


def _own(stats: Statistics, start: datetime, end: datetime) -> list[tuple[Query, list[Row]]]:
    """Kerma's own survey: each quantity with its rows (procedure, device), where there are any."""
    found = []
    for quantity, level in stats.tables.survey:
        query = Query(quantity, level, ("procedure", "device"), start.timestamp(), end.timestamp())
        rows = [r for r in stats.dose(query)
                if r.group.get("procedure") not in (None, NOT_CLASSIFIED)]  # fmt: skip
        if rows:
            found.append((query, rows))
    return found


def _national(
    stats: Statistics, about: About, start: datetime, end: datetime, now: datetime
) -> Made:
    rules = survey_rules(about.survey)
    found = national.tables(stats, rules, start, end)
    bundle = measures.collection([(t.query, t.rows) for t in found], stats, now, about)
    return Made(bundle, lambda: render.pdf(
        "national_survey.html", [_attached(bundle)], rules=rules, tables=found,
        left_out=_left_out(stats, start, end), start=start, end=end,
        generated=instant(now.timestamp()), site=about.site, drl_sets=", ".join(rules.drl_sets)),
        len(found), sum(len(t.rows) for t in found))  # fmt: skip


def _left_out(stats: Statistics, start: datetime, end: datetime) -> LeftOut:
    return stats.left_out(Query("dlp_mgy_cm", "study", (), start.timestamp(), end.timestamp()))


def _attached(bundle: dict[str, Any]) -> tuple[str, bytes]:
    return "survey-bundle.json", orjson.dumps(bundle, option=orjson.OPT_INDENT_2)
