"""The dose analytics of the GraphQL schema, for BI tools: dose statistics, DRL compliance,
timelines, modality load, devices and the alerts of a period. Every resolver calls the
service the REST statistics call (server/stats/service.py), so the numbers are the same."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from server.dose.statistics import Summary
from server.graphql.context import Context
from server.graphql.errors import fhir_errors
from server.stats.service import (
    UNITS,
    LevelComparison,
    Row,
    Statistics,
    alerts_of,
    cumulative_of,
    query_of,
)
from server.stats.service import Query as StatsQuery

From = Annotated[date | None, strawberry.argument(name="from", description="first day")]


@strawberry.enum
class GroupBy(enum.Enum):
    MODALITY = "modality"
    DEVICE = "device"
    PROCEDURE = "procedure"
    PROTOCOL = "protocol"
    BODY_REGION = "body_region"
    ACQUISITION_TYPE = "acquisition_type"
    AGE_BAND = "age_band"
    YEAR = "year"
    MONTH = "month"
    WEEK = "week"
    WEEKDAY = "weekday"
    HOUR = "hour"


@strawberry.type
class GroupValue:
    name: str
    value: str | None


@strawberry.type
class DrlComparison:
    set: str
    examination: str
    level: float
    ratio: float
    within: bool


# the numbers of a group, as the statistics compute them (server.dose.statistics.Summary, but
# its internal group code)
_TYPES = {"int": int, "float": float}
DoseNumbers = strawberry.type(
    dataclasses.make_dataclass(
        "DoseNumbers",
        [(f.name, _TYPES[str(f.type)]) for f in dataclasses.fields(Summary) if f.name != "group"],
    ),
    description="n, mean, sample standard deviation, min, 25th/50th/75th/95th percentile, max",
)


@strawberry.type
class DoseStatistics:
    group: list[GroupValue]
    summary: DoseNumbers  # type: ignore[valid-type]  # made from Summary above
    unit: str
    drl: list[DrlComparison]


@strawberry.type
class LoadRow:
    group: list[GroupValue]
    n: int


@strawberry.type
class DeviceRow:
    device: str
    name: str
    type: str
    manufacturer: str
    model: str
    station_name: str
    serial_number: str
    software_versions: str
    department: str
    examinations: int
    first: str | None
    last: str | None


@strawberry.enum
class TimelinePeriod(enum.Enum):
    YEAR = "year"
    MONTH = "month"
    WEEK = "week"


@strawberry.type
class DrlCompliance:
    group: list[GroupValue]
    n: int
    median: float
    p75: float
    unit: str
    drl: list[DrlComparison]


@strawberry.type
class TimelinePoint:
    period: str
    n: int
    median: float
    p75: float


@strawberry.type
class Timeline:
    quantity: str
    unit: str
    points: list[TimelinePoint]
    drl: list[DrlComparison]


@strawberry.type
class Alert:
    issue: str
    identified: str | None
    severity: str | None
    code: str
    device_name: str
    detail: str | None
    status: str | None


@strawberry.type
class CumulativeDose:
    modality: str
    examinations: int
    undated: int = strawberry.field(
        description="examinations without a date: counted whatever the period"
    )
    dlp_mgy_cm: float
    dlp_mgy_cm_examinations: int
    dap_gy_m2: float
    dap_gy_m2_examinations: int
    dose_rp_gy: float
    dose_rp_gy_examinations: int
    agd_mgy: float
    agd_mgy_examinations: int
    effective_dose_msv_estimate: float = strawberry.field(
        description="sum of the effective doses Kerma estimated (CT, k-factors): a population "
        "estimate, not this patient's dose or risk"
    )
    effective_dose_msv_estimate_examinations: int
    first: str | None
    last: str | None


@strawberry.type
class Analytics:
    @strawberry.field(description="A dose quantity per group: n, mean, sd, min, percentiles, max, "
                      "and the DRLs compared with the median (the numbers of GET /stats/dose)")  # fmt: skip
    def dose_statistics(
        self,
        info: Info,
        quantity: str,
        level: str = "study",
        group_by: list[GroupBy] | None = None,
        from_: From = None,
        to: date | None = None,
        modality: str | None = None,
        device: str | None = None,
        procedure: str | None = None,
    ) -> list[DoseStatistics]:
        stats, q = _query(info, locals())
        return [_dose_row(row, q) for row in _answer(lambda: stats.dose(q))]

    @strawberry.field(description="The median per group (procedure by default; procedure "
                      "and device for each room) beside the DRLs that apply to it")  # fmt: skip
    def drl_compliance(
        self,
        info: Info,
        quantity: str,
        level: str = "study",
        group_by: list[GroupBy] | None = None,
        from_: From = None,
        to: date | None = None,
        modality: str | None = None,
        device: str | None = None,
    ) -> list[DrlCompliance]:
        stats, q = _query(info, locals())
        return [DrlCompliance(group=_group(row.group), n=row.summary.n, median=row.summary.median,
                              p75=row.summary.p75, unit=UNITS[q.quantity], drl=_levels(row.levels))
                for row in _answer(lambda: stats.dose(q)) if row.levels]  # fmt: skip

    @strawberry.field(description="n, median and 75th percentile per year, month or week, "
                      "with the DRLs of the procedure (the data of /stats/charts/timeline.svg)")  # fmt: skip
    def timeline(
        self,
        info: Info,
        quantity: str,
        procedure: str | None = None,
        period: TimelinePeriod = TimelinePeriod.MONTH,
        level: str = "study",
        from_: From = None,
        to: date | None = None,
        modality: str | None = None,
        device: str | None = None,
    ) -> Timeline:
        stats, q = _query(info, {**locals(), "group_by": None})
        q = replace(q, group_by=(period.value,))
        rows = _answer(lambda: stats.dose(q))
        points = [TimelinePoint(period=str(r.group[period.value]), n=r.summary.n,
                                median=r.summary.median, p75=r.summary.p75) for r in rows]  # fmt: skip
        levels = stats.levels_of(q, procedure) if procedure else ()
        return Timeline(quantity=q.quantity, unit=UNITS[q.quantity], points=points,
                        drl=_levels(levels))  # fmt: skip

    @strawberry.field(description="One patient's examinations per modality with the sums of "
                      "DLP, DAP, Ka,r and AGD, and how many examinations had each (/stats/cumulative)")  # fmt: skip
    def cumulative_dose(
        self,
        info: Info,
        patient: str,
        from_: From = None,
        to: date | None = None,
    ) -> list[CumulativeDose]:
        stats, q = _query(info, {**locals(), "quantity": "dlp_mgy_cm"})
        context: Context = info.context
        with fhir_errors():
            context.access.require_every_observation()
            rows = cumulative_of(context.service, stats, q)
        context.patients.append(q.patient)
        return [CumulativeDose(**row) for row in rows]

    @strawberry.field(description="Examinations (level study) or events per group")
    def modality_load(
        self,
        info: Info,
        group_by: list[GroupBy],
        quantity: str = "dlp_mgy_cm",
        level: str = "study",
        from_: From = None,
        to: date | None = None,
        modality: str | None = None,
    ) -> list[LoadRow]:
        stats, q = _query(info, locals())
        return [LoadRow(group=_group(g), n=n) for g, n in _answer(lambda: stats.load(q))]

    @strawberry.field(description="Every device with its identity and examinations in the period")
    def devices(
        self,
        info: Info,
        from_: From = None,
        to: date | None = None,
    ) -> list[DeviceRow]:
        stats, q = _query(info, {**locals(), "quantity": "dlp_mgy_cm"})
        return [DeviceRow(**row) for row in _answer(lambda: stats.devices(q))]

    @strawberry.field(description="The alerts of the period: examinations above DRLs or alert "
                      "levels, medians above DRLs, drift; with their status (/stats/above-levels)")  # fmt: skip
    def alerts(
        self,
        info: Info,
        from_: From = None,
        to: date | None = None,
        device: str | None = None,
    ) -> list[Alert]:
        stats, q = _query(info, {**locals(), "quantity": "dlp_mgy_cm"})
        context: Context = info.context
        with fhir_errors():
            context.access.require("DetectedIssue")
            return [Alert(**row) for row in alerts_of(context.service, stats, q)]


def _query(info: Info, args: dict[str, Any]) -> tuple[Statistics, StatsQuery]:
    """The statistics of the request's site and the query its arguments make (as REST's)."""
    context: Context = info.context
    words = {
        "quantity": args.get("quantity") or "",
        "level": args.get("level") or "study",
        "group": ",".join(g.value for g in (args.get("group_by") or [GroupBy.PROCEDURE])),
        **{k: str(v) for k, v in (("from", args.get("from_")), ("to", args.get("to"))) if v},
        **{k: str(args[k]) for k in ("modality", "device", "procedure", "patient") if args.get(k)},
    }
    with fhir_errors():
        context.require_statistics()
        stats = context.statistics()
        now = datetime.now().astimezone()
        query = query_of(words, stats.ctx.timezone, now, context.access.devices)
    return stats, query


def _answer(compute: Callable[[], Any]) -> Any:
    with fhir_errors():
        return compute()


def _group(group: dict[str, str | None]) -> list[GroupValue]:
    return [GroupValue(name=k, value=v) for k, v in group.items()]


def _levels(levels: tuple[LevelComparison, ...]) -> list[DrlComparison]:
    return [DrlComparison(set=lv.set, examination=lv.examination, level=lv.level,
                          ratio=lv.reported_ratio, within=lv.within) for lv in levels]  # fmt: skip


def _dose_row(row: Row, q: StatsQuery) -> DoseStatistics:
    numbers = {k: v for k, v in dataclasses.asdict(row.summary).items() if k != "group"}
    return DoseStatistics(group=_group(row.group), summary=DoseNumbers(**numbers),
                          unit=UNITS[q.quantity], drl=_levels(row.levels))  # fmt: skip
