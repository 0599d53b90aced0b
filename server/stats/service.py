"""Statistics over the dose facts (requirements S1, S2, P1, H1): a dose quantity summarised per
group (device, standard procedure, protocol, period, age band...), its medians against the
DRLs that apply, local DRL proposals and the load of the modalities. REST (/stats), reports
and GraphQL call these functions: one implementation of every number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt

from server.calculated.observations import CALCULATED_ID
from server.config import Settings
from server.dose.cumulative import QUANTITIES, per_modality
from server.dose.facts import LEVEL_FIELDS
from server.dose.statistics import StatisticsTables, Summary, codes, combine, split, summarise
from server.dose.surveys import Population
from server.fhir.errors import FhirError
from server.fhir.mapping import Context, device_identity
from server.fhir.search import parse
from server.fhir.service import FhirService, body_of, device_names
from server.fhir.values import day_start
from server.mappings import statistics_tables
from server.site import site_context
from server.site.tables import site_tables
from server.stats.columns import Columns, FactColumns
from server.store.port import Store

GROUPS = ("modality", "device", "procedure", "protocol", "body_region", "acquisition_type",
          "age_band", "year", "month", "week", "weekday", "hour")  # fmt: skip
UNITS = {
    "ctdivol_mgy": "mGy", "dlp_mgy_cm": "mGy·cm", "ssde_mgy": "mGy", "dap_gy_m2": "Gy·m²",
    "dose_rp_gy": "Gy", "agd_mgy": "mGy", "exposure_index": "", "fluoro_time_s": "s",
    "kvp_kv": "kV", "tube_current_ma": "mA", "exposure_mas": "mAs", "pitch_factor": "",
    "collimation_mm": "mm", "weight_kg": "kg",
}  # fmt: skip
NOT_CLASSIFIED = "not classified"  # the procedure group of examinations no rule classified
_PERIODS = {"year": "%Y", "month": "%Y-%m", "week": "%G-W%V", "weekday": "%u %a", "hour": "%H"}
_MAX_DAYS = 366 * 50
# no X-ray dose is older, and a period's default start (a year before `to`) stays a date
_EARLIEST = date(1900, 1, 1)


@dataclass(frozen=True)
class Query:
    quantity: str
    level: str = "study"  # study totals or irradiation events
    group_by: tuple[str, ...] = ("procedure",)
    since: float = 0.0  # epoch seconds, [since, until)
    until: float = math.inf
    modality: str = ""
    device: str = ""
    procedure: str = ""
    patient: str = ""  # "Patient/<id>": one patient's examinations only
    # the only devices the user may see (a radiographer's); empty: every device
    devices: tuple[str, ...] = ()
    qa: bool = False  # QA, phantom and physics examinations too (else left out, counted apart)
    procedures: tuple[str, ...] = ()  # only these standard procedures (names); empty: any
    population: Population | None = None  # only the patients a survey counts; None: all


@dataclass(frozen=True)
class LevelComparison:
    set: str
    examination: str
    level: float
    ratio: float  # median / level

    @property
    def within(self) -> bool:
        return self.ratio <= 1.0

    @property
    def reported_ratio(self) -> float:
        """The ratio as every report gives it (REST, GraphQL, MeasureReports): 4 decimals."""
        return round(self.ratio, 4)


@dataclass(frozen=True)
class Row:
    group: dict[str, str | None]
    summary: Summary
    levels: tuple[LevelComparison, ...] = ()


@dataclass(frozen=True)
class LeftOut:
    """What a period's statistics leave out or cannot name."""

    qa: int  # QA, phantom and physics examinations
    unclassified: list[tuple[str, int]]  # (the examination's own words, how many)

    @property
    def unclassified_total(self) -> int:
        return sum(n for _, n in self.unclassified)


@dataclass(frozen=True)
class Proposal:
    """A local DRL proposal for one standard procedure (ICRP 135's method)."""

    procedure: str
    n: int
    devices: int  # devices with enough values to have a median that counts
    typical_value: float  # median of all values
    proposal: float | None  # the percentile of the device medians; None without devices
    levels: tuple[LevelComparison, ...] = ()


def query_of(
    args: Mapping[str, str],
    timezone: tzinfo,
    now: datetime,
    devices: tuple[str, ...] | None = None,
) -> Query:
    """A Query from request arguments (quantity, level, group, from, to, modality, device,
    procedure); 400 naming what is wrong. Default period: the last 365 days. `devices`: the
    only devices the user may see (Access.devices; None: all)."""
    quantity = args.get("quantity", "")
    if quantity not in UNITS:
        raise _invalid(f"quantity must be one of {', '.join(UNITS)}")
    level = args.get("level", "study")
    if level not in ("study", "event"):
        raise _invalid("level must be study or event")
    group_by = tuple(g for g in args.get("group", "procedure").split(",") if g)
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown or not group_by or len(set(group_by)) != len(group_by):
        raise _invalid(f"group is a comma-separated list of {', '.join(GROUPS)}, each once")
    until = _day(args.get("to"), "to", timezone) if args.get("to") else now.timestamp()
    start = (_day(args.get("from"), "from", timezone) if args.get("from")
             else max(until - 365 * 86400, day_start(_EARLIEST, timezone).timestamp()))  # fmt: skip
    if not 0 < until - start <= _MAX_DAYS * 86400:
        raise _invalid(f"from must be before to, at most {_MAX_DAYS} days")
    return Query(quantity, level, group_by, start, until, args.get("modality", ""),
                 args.get("device", ""), args.get("procedure", ""), args.get("patient", ""),
                 devices or ())  # fmt: skip


def _day(text: str | None, name: str, timezone: tzinfo) -> float:
    """A date (YYYY-MM-DD) as the start of that day in the site's time zone; `to` is
    exclusive, so to=2026-12-01 ends with November."""
    try:
        day = date.fromisoformat(text or "")
    except ValueError:
        raise _invalid(f"{name} must be a date YYYY-MM-DD") from None
    if day < _EARLIEST:
        raise _invalid(f"{name} must be a date from {_EARLIEST.isoformat()} on")
    return day_start(day, timezone).timestamp()


def alerts_of(service: FhirService, stats: Statistics, q: Query) -> list[dict[str, Any]]:
    """The DetectedIssues identified in the query's period (of its device, if it names one),
    with how each was handled."""
    start, end = stats.period(q)
    pairs = [("identified", f"ge{start}"), ("identified", f"lt{end}"), ("_sort", "identified")]
    rows = []
    for stored in service.all_in(service.store, "DetectedIssue", pairs):
        issue = body_of(stored)
        device = next((i["reference"] for i in issue.get("implicated", [])
                       if i["reference"].startswith("Device/")), "")  # fmt: skip
        if (q.device and device != q.device) or (q.devices and device not in q.devices):
            continue
        rows.append({"issue": f"DetectedIssue/{stored.rid}", "identified": issue.get("identifiedDateTime"),
                     "severity": issue.get("severity"), "code": issue["code"]["coding"][0]["code"],
                     "device_name": stats.device_name(device) if device else "",
                     "detail": issue.get("detail"), "status": issue.get("status")})  # fmt: skip
    return rows


def cumulative_of(service: FhirService, stats: Statistics, q: Query) -> list[dict[str, Any]]:
    """Statistics.cumulative, with the sum of the effective doses Kerma estimated for the
    patient's CT examinations of the period (labelled an estimate; see server/calculated/observations.py)."""
    rows = stats.cumulative(q)
    start, end = stats.period(q)
    pairs = [
        ("subject", q.patient),
        ("code", "113839"),
        ("date", f"ge{start}"),
        ("date", f"lt{end}"),
    ]
    estimates = [
        body["valueQuantity"]["value"]
        for body in map(body_of, service.all_in(service.store, "Observation", pairs))
        if body.get("identifier", [{}])[0].get("system") == CALCULATED_ID
    ]
    for row in rows:
        mine = estimates if row["modality"] == "CT" else []
        row["effective_dose_msv_estimate"] = math.fsum(mine)
        row["effective_dose_msv_estimate_examinations"] = len(mine)
    return rows


def _invalid(text: str) -> FhirError:
    return FhirError.of(400, "invalid", text)


@dataclass
class Statistics:
    store: Store
    ctx: Context
    tables: StatisticsTables
    facts: Callable[[str], FactColumns]  # the columnar copy of a level's facts
    device_name: Callable[[str], str] = field(init=False)

    def __post_init__(self) -> None:
        self.device_name = device_names(self.store)

    def dose(self, q: Query) -> list[Row]:
        """The quantity summarised per group, with the DRLs of each procedure compared."""
        columns, words, keep = self.select(q)
        values = columns[q.quantity][keep]
        combined, labels, sizes = self._groups(q, columns, words, keep)
        rows = []
        for summary in summarise(values, combined):
            group = self._group(q.group_by, labels, split(summary.group, sizes))
            rows.append(Row(group, summary, self._compare(q, group, summary.median)))
        return rows

    def examinations(self, q: Query) -> dict[str, tuple[int, float, float]]:
        """Per device: examinations in the period, the first and the last one (epoch)."""
        columns, words, keep = self.select(replace(q, level="study"))
        devices, dates = columns["device"][keep], columns["date"][keep]
        found = {}
        for code in np.unique(devices):
            mine = dates[devices == code]
            label = words["device"][int(code)]
            if label is not None:
                found[str(label)] = (int(mine.size), float(mine.min()), float(mine.max()))
        return found

    def examinations_per_device(self, q: Query) -> dict[str, int]:
        """Per device: how many examinations the query's values come from (irradiation events
        count once per study), for minimums that count patients rather than values."""
        columns, words, keep = self.select(q)
        keep &= ~np.isnan(columns[q.quantity])
        pairs = np.unique(np.stack([columns["device"][keep].astype(np.int64),
                                    columns["study_uid"][keep].astype(np.int64)]), axis=1)  # fmt: skip
        counts = np.bincount(pairs[0], minlength=len(words["device"]))
        return {str(words["device"][c]): int(n) for c, n in enumerate(counts) if n}

    def devices(self, q: Query) -> list[dict[str, Any]]:
        """Every device with its identity and its examinations in the period, by name."""
        counts = self.examinations(q)
        rows = []
        for stored in self.store.search(_every("Device"))[0]:
            ref = f"Device/{stored.rid}"
            if q.devices and ref not in q.devices:
                continue
            n, first, last = counts.get(ref, (0, None, None))
            rows.append({"device": ref, **device_identity(body_of(stored)), "examinations": n,
                         "first": self._when(first), "last": self._when(last)})  # fmt: skip
        return sorted(rows, key=lambda r: str(r["name"]))

    def period(self, q: Query) -> tuple[str, str]:
        """The query's [since, until) as ISO date-times in the site's time zone."""
        start, end = (datetime.fromtimestamp(t, self.ctx.timezone) for t in (q.since, q.until))
        return start.isoformat(), end.isoformat()

    def _when(self, epoch: float | None) -> str | None:
        if epoch is None:
            return None
        return datetime.fromtimestamp(epoch, self.ctx.timezone).isoformat(timespec="seconds")

    def cumulative(self, q: Query) -> list[dict[str, Any]]:
        """One patient's examinations in the period per modality, with the sums of DLP, DAP,
        Ka,r and AGD and how many examinations had each (H5). An examination without a date
        counts whatever the period (its dose was received; `undated` says how many)."""
        if not q.patient.startswith("Patient/"):
            raise _invalid("patient must be Patient/<id>")
        columns, labels, keep = self.select(replace(q, level="study"))
        code = self.facts("study").code("patient", q.patient)
        undated = np.isnan(columns["date"]) & (columns["patient"] == (-1 if code is None else code))
        keep |= undated
        values = {name: columns[name][keep] for name in QUANTITIES}
        found = per_modality(columns["modality"][keep], labels["modality"],
                             columns["date"][keep], values)  # fmt: skip
        return [{"modality": c.modality, "examinations": c.examinations, "undated": c.undated,
                 **{name: c.sums[name] for name in QUANTITIES},
                 **{f"{name}_examinations": c.counted[name] for name in QUANTITIES},
                 "first": self._when(c.first), "last": self._when(c.last)} for c in found]  # fmt: skip

    def values(self, q: Query) -> npt.NDArray[np.float64]:
        """The quantity's values the query selects (histograms)."""
        columns, _, keep = self.select(q)
        values: npt.NDArray[np.float64] = columns[q.quantity][keep]
        return values[~np.isnan(values)]

    def levels_of(self, q: Query, procedure: str) -> tuple[LevelComparison, ...]:
        """The DRLs for the query's quantity and level that apply to a standard procedure,
        each as compared with a median of 1 (so `ratio` is 1 / level)."""
        return self._compare(q, {"procedure": procedure}, 1.0)

    def load(self, q: Query) -> list[tuple[dict[str, str | None], int]]:
        """How many examinations (study rows) or irradiation events per group (H1): those
        that have the quantity."""
        columns, words, keep = self.select(q)
        keep &= ~np.isnan(columns[q.quantity])
        combined, labels, sizes = self._groups(q, columns, words, keep)
        counts = np.bincount(combined) if combined.size else np.zeros(0, np.int64)
        return [
            (self._group(q.group_by, labels, split(int(code), sizes)), int(n))
            for code, n in enumerate(counts)
            if n
        ]

    def counts(self, q: Query, word: str) -> dict[str, int]:
        """How many rows of the query's level per label of a word column (modality, device...),
        whatever quantities they have."""
        columns, labels, keep = self.select(q)
        counts = np.bincount(columns[word][keep], minlength=len(labels[word]))
        return {str(labels[word][code]): int(n) for code, n in enumerate(counts) if n}

    def above_levels(self, q: Query) -> list[tuple[str, Row]]:
        """Per standard procedure, the medians of the period above a DRL that applies to them:
        (quantity field, row), for each quantity and level DRLs are set for."""
        found = []
        for quantity, level in dict.fromkeys(LEVEL_FIELDS.values()):
            rows = self.dose(replace(q, quantity=quantity, level=level, group_by=("procedure",)))
            found += [(quantity, r) for r in rows if any(not c.within for c in r.levels)]
        return found

    def drl_proposal(self, q: Query) -> list[Proposal]:
        """Per standard procedure: the typical value (median of all values) and the proposed
        local DRL (the percentile of the device medians with enough values)."""
        by_device = self.dose(Query(**{**q.__dict__, "group_by": ("procedure", "device")}))
        by_procedure = self.dose(Query(**{**q.__dict__, "group_by": ("procedure",)}))
        proposals = []
        for row in by_procedure:
            procedure = row.group["procedure"]
            if procedure == NOT_CLASSIFIED:
                continue  # no standard procedure: nothing to propose a level for
            medians = [r.summary.median for r in by_device if r.group["procedure"] == procedure
                       and r.summary.n >= self.tables.min_values_per_device]  # fmt: skip
            proposal = (
                float(np.percentile(medians, self.tables.proposal_percentile)) if medians else None
            )
            proposals.append(Proposal(str(procedure), row.summary.n, len(medians),
                                      row.summary.median, proposal, row.levels))  # fmt: skip
        return proposals

    # -- internals ---------------------------------------------------------------------------

    def select(
        self, q: Query
    ) -> tuple[Columns, dict[str, list[str | None]], npt.NDArray[np.bool_]]:
        """The level's columns, their labels, and which rows the query asks for."""
        facts = self.facts(q.level)
        columns, labels = facts.current()
        keep = (columns["date"] >= q.since) & (columns["date"] < q.until)
        if q.since == -math.inf and q.until == math.inf:  # any time: the undated rows too
            keep |= np.isnan(columns["date"])
        for name in ("modality", "device", "procedure", "patient"):
            wanted = getattr(q, name)
            if wanted:
                code = facts.code(name, wanted)
                keep &= columns[name] == (-1 if code is None else code)
        for name, wanted in (("device", q.devices), ("procedure", q.procedures)):
            if wanted:
                found = [c for c in (facts.code(name, w) for w in wanted) if c is not None]
                keep &= np.isin(columns[name], found)
        unclassified = facts.code("category", "unclassified")
        if q.procedures and unclassified is not None:  # its own words are no procedure
            keep &= columns["category"] != unclassified
        if q.population is not None:
            keep &= q.population.admits(columns["age_years"], columns["weight_kg"])
        qa = facts.code("category", "qa")
        if not q.qa and qa is not None:
            keep &= columns["category"] != qa
        return columns, labels, keep

    def _groups(
        self,
        q: Query,
        columns: Columns,
        labels: dict[str, list[str | None]],
        keep: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.int64], list[list[object]], list[int]]:
        parts, names = [], []
        for name in q.group_by:
            if name in _PERIODS:
                code, label = _period_codes(
                    columns["date"][keep], _PERIODS[name], self.ctx.timezone
                )
            elif name == "age_band":
                code, label = self._age_codes(columns["age_years"][keep])
            elif name == "procedure":
                code, label = self._procedure_codes(q, columns, labels, keep)
            else:
                code, label = columns[name][keep], list(labels[name])
            parts.append(code)
            names.append(label)
        sizes = [max(len(label), 1) for label in names]
        return combine(parts, sizes), names, sizes

    def _procedure_codes(
        self,
        q: Query,
        columns: Columns,
        labels: dict[str, list[str | None]],
        keep: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.int64], list[object]]:
        """The standard procedures; every unclassified examination under NOT_CLASSIFIED (its
        own words are no procedure: `left_out` lists them)."""
        code = columns["procedure"][keep].astype(np.int64)
        unclassified = self.facts(q.level).code("category", "unclassified")
        if unclassified is not None:
            code[columns["category"][keep] == unclassified] = len(labels["procedure"])
        return code, [*labels["procedure"], NOT_CLASSIFIED]

    def left_out(self, q: Query) -> LeftOut:
        """The examinations of the query's period, modality and devices that its statistics
        leave out (QA, phantoms) or put under NOT_CLASSIFIED (with their own words)."""
        columns, labels, keep = self.select(replace(q, level="study", qa=True, procedure=""))
        facts = self.facts("study")
        qa, unclassified = (facts.code("category", c) for c in ("qa", "unclassified"))
        category = columns["category"][keep]  # (a code that no row has is None: no match)
        names = columns["procedure"][keep][category == unclassified]
        counts = np.bincount(names, minlength=len(labels["procedure"]))
        found = [(labels["procedure"][c] or "(no name)", int(n)) for c, n in enumerate(counts) if n]
        return LeftOut(int(np.count_nonzero(category == qa)),
                       sorted(found, key=lambda pair: (-pair[1], pair[0])))  # fmt: skip

    def _age_codes(
        self, ages: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], list[object]]:
        bands = self.tables.age_bands
        edges = [b for _, b in bands if b is not None]
        band = np.digitize(ages, edges)  # NaN (age unknown) lands past the last band
        band[np.isnan(ages)] = len(bands)
        return band.astype(np.int64), [label for label, _ in bands] + [None]

    def _group(
        self, names: tuple[str, ...], labels: list[list[object]], parts: list[int]
    ) -> dict[str, str | None]:
        group: dict[str, str | None] = {}
        for name, label, part in zip(names, labels, parts, strict=True):
            value = label[part]
            group[name] = None if value is None else str(value)
            if name == "device" and value is not None:
                group["device_name"] = self.device_name(str(value))
        return group

    def _compare(
        self, q: Query, group: dict[str, str | None], median: float
    ) -> tuple[LevelComparison, ...]:
        procedure = self.ctx.rules.named(group.get("procedure") or "")
        if procedure is None:
            return ()
        age = _band_age(self.tables, group.get("age_band"))
        found = self.ctx.applicable_levels(procedure.code, age, None)
        return tuple(
            LevelComparison(lv.set, lv.examination, lv.value, median / lv.value)
            for lv in found
            if LEVEL_FIELDS.get((lv.quantity_code, lv.per)) == (q.quantity, q.level)
        )


def _every(rtype: str) -> Any:
    """A search for every current resource of a type."""
    return replace(parse(rtype, [], strict=True).query, count=1_000_000, with_total=False)


def site_statistics(
    service: FhirService, settings: Settings, facts: Mapping[str, FactColumns] | None = None
) -> Statistics:
    """The statistics of a store with the site's levels and rules; `facts`: the columnar
    copies to use (the app keeps its own; a job reads them once)."""
    ctx = site_tables(service, settings).context(site_context(settings))
    copies = facts or {
        level: FactColumns(service.store, level, settings.facts_dir) for level in ("event", "study")
    }
    return Statistics(service.store, ctx, statistics_tables(), copies.__getitem__)


def _band_age(tables: StatisticsTables, band: str | None) -> float | None:
    """An age inside a band (its lower bound), for the levels of that band; None: adult."""
    lower = 0.0
    for label, below in tables.age_bands:
        if label == band:
            return lower if below is not None else None
        lower = below if below is not None else lower
    return None


def _period_codes(
    dates: npt.NDArray[np.float64], pattern: str, timezone: tzinfo
) -> tuple[npt.NDArray[np.int64], list[object]]:
    """Period labels in the site's time zone (daylight saving included): computed once per
    hour that occurs, not once per row."""
    hours, inverse = np.unique(np.floor(dates / 3600.0), return_inverse=True)
    names = [_period_name(float(h), pattern, timezone) for h in hours]
    label_codes, labels = codes(names)
    return label_codes[inverse], labels


@functools.cache
def _period_name(hour: float, pattern: str, timezone: tzinfo) -> str:
    return (datetime.fromtimestamp(hour * 3600.0, timezone)).strftime(pattern)
