"""The charts of a statistics query, titled as people read them: what each chart counts and
its axes in words with units ("Median DLP (mGy·cm)"), never field names. REST
(/stats/charts), the console's analysis page and the department report draw them here."""

from __future__ import annotations

from dataclasses import replace

from server.dose.facts import NAMES
from server.fhir.errors import FhirError
from server.stats import charts
from server.stats.service import UNITS, Query, Statistics

KINDS = ("timeline", "boxplot", "histogram", "load")
PERIODS = ("year", "month", "week")


def label(quantity: str) -> str:
    """ "DLP (mGy·cm)": a quantity as an axis or a column is titled."""
    name = NAMES.get(quantity, quantity)
    return f"{name} ({UNITS[quantity]})" if UNITS.get(quantity) else name


def counted(q: Query) -> str:
    """What a row of the query's level is: examinations or irradiation events."""
    return "Examinations" if q.level == "study" else "Irradiation events"


def figure(stats: Statistics, q: Query, kind: str, period: str = "month") -> str:
    """The chart of that kind as SVG: timeline (median per period with the DRLs of the
    query's procedure), boxplot (per device), histogram, load (per weekday and hour)."""
    one = "examination" if q.level == "study" else "irradiation event"
    about = f"{NAMES.get(q.quantity, q.quantity)} per {one}"
    where = ", ".join(w for w in (q.modality, q.procedure) if w)
    title = f"{about}{f', {where}' if where else ''}"
    if kind == "timeline":
        if period not in PERIODS:
            raise FhirError.of(400, "invalid", "period is year, month or week")
        rows = stats.dose(replace(q, group_by=(period,)))
        levels = (
            [(lv.set, lv.level) for lv in stats.levels_of(q, q.procedure)] if q.procedure else []
        )
        return charts.timeline([str(r.group[period]) for r in rows], [r.summary.median for r in rows],
                               levels, f"Median {title}, per {period}", f"Median {label(q.quantity)}",
                               UNITS[q.quantity])  # fmt: skip
    if kind == "boxplot":
        rows = stats.dose(replace(q, group_by=("device",)))
        groups = [(str(r.group.get("device_name")), r.summary) for r in rows]
        return charts.boxplot(groups, f"{title}, per device", label(q.quantity))
    if kind == "histogram":
        return charts.histogram(stats.values(q), title, label(q.quantity), counted(q))
    if kind == "load":
        counts = stats.load(replace(q, group_by=("weekday", "hour")))
        grid = {(int(str(g["weekday"])[0]), int(str(g["hour"]))): n for g, n in counts}
        return charts.load_heatmap(grid, f"{counted(q)} by weekday and hour", counted(q))
    raise FhirError.of(404, "not-found", f"charts: {', '.join(KINDS)}")
