"""The GraphQL schema: dose statistics, modality load, devices and the alerts of a period.
Every resolver calls the service the REST statistics call (server/stats/service.py); a
FhirError becomes a GraphQL error carrying the OperationOutcome in `extensions.resource`."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from server.dose.statistics import Summary
from server.fhir.errors import FhirError, outcome
from server.stats.service import UNITS, Row, Statistics, query_of
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


@strawberry.type
class Query:
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


def _query(info: Info, args: dict[str, Any]) -> tuple[Statistics, StatsQuery]:
    """The statistics of the request's site and the query its arguments make (as REST's)."""
    context = info.context
    words = {
        "quantity": args.get("quantity") or "",
        "level": args.get("level") or "study",
        "group": ",".join(g.value for g in (args.get("group_by") or [GroupBy.PROCEDURE])),
        **{k: str(v) for k, v in (("from", args.get("from_")), ("to", args.get("to"))) if v},
        **{k: str(args[k]) for k in ("modality", "device", "procedure") if args.get(k)},
    }
    query = _answer(lambda: query_of(words, context["timezone"], datetime.now().astimezone()))
    return context["statistics"](), replace(query)


def _answer(compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except FhirError as e:
        raise GraphQLError(str(e), extensions={"resource": outcome(e.issues)}) from None


def _group(group: dict[str, str | None]) -> list[GroupValue]:
    return [GroupValue(name=k, value=v) for k, v in group.items()]


def _dose_row(row: Row, q: StatsQuery) -> DoseStatistics:
    numbers = {k: v for k, v in dataclasses.asdict(row.summary).items() if k != "group"}
    return DoseStatistics(
        group=_group(row.group),
        summary=DoseNumbers(**numbers),
        unit=UNITS[q.quantity],
        drl=[DrlComparison(set=lv.set, examination=lv.examination, level=lv.level,
                           ratio=lv.ratio, within=lv.within) for lv in row.levels],
    )  # fmt: skip


schema = strawberry.Schema(query=Query)
