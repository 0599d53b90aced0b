"""Monitoring over the dose-facts projection (requirements D1, D3, D4, H5): medians above DRLs
per device and standard procedure, drift of acquisition parameters between two periods,
duplicate protocols, one procedure done differently on different devices, and patients with
repeated examinations in a short time.

Pure: rows (DoseFact) and tables (mappings/monitoring.yaml) in, findings out.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from server.dose.drl import DoseLevel
from server.dose.facts import LEVEL_FIELDS, DoseFact

_SCOUT = "Constant Angle Acquisition"  # CT localizers: no dose level is meant for them


@dataclass(frozen=True)
class RepeatRule:
    """A patient's examinations of some modalities within `window_days`: flagged at
    `examinations` or more, or when the sum of a quantity reaches its level."""

    name: str
    modalities: tuple[str, ...]
    window_days: int
    examinations: int | None = None
    sums: tuple[tuple[str, float], ...] = ()  # (study-level field, level)

    @classmethod
    def of(cls, spec: dict[str, Any]) -> RepeatRule:
        count = spec.get("examinations")
        return cls(str(spec["name"]), tuple(spec["modalities"]), int(spec["window_days"]),
                   None if count is None else int(count),
                   tuple((str(k), float(v)) for k, v in (spec.get("sums") or {}).items()))  # fmt: skip


@dataclass(frozen=True)
class Repeated:
    """A patient whose examinations in a window met a RepeatRule."""

    rule: RepeatRule
    patient: str
    examinations: tuple[str, ...]  # the study summaries (Observation references), oldest first
    sums: tuple[tuple[str, float], ...]  # the rule's quantities summed over them
    first: float
    last: float


@dataclass(frozen=True)
class Tolerance:
    name: str
    unit: str
    absolute: float | None = None
    relative: float | None = None

    def exceeded(self, reference: float, value: float) -> bool:
        change = abs(value - reference)
        return (self.absolute is not None and change > self.absolute) or (
            self.relative is not None and reference > 0 and change / reference > self.relative
        )


@dataclass(frozen=True)
class Table:
    """mappings/monitoring.yaml, read."""

    min_values: int
    median_days: int
    after_days: int
    before_days: int
    p_value: float
    drift: dict[str, Tolerance]
    duplicate_min_values: int
    duplicate_rounding: dict[str, int]
    across: dict[str, Tolerance]
    repeated: tuple[RepeatRule, ...] = ()
    silent_days: int = 7

    @classmethod
    def of(cls, table: dict[str, Any]) -> Table:
        def tolerances(specs: dict[str, dict[str, Any]]) -> dict[str, Tolerance]:
            return {field: Tolerance(**spec) for field, spec in specs.items()}

        return cls(
            min_values=int(table["min_values"]),
            median_days=int(table["medians"]["days"]),
            after_days=int(table["drift"]["after_days"]),
            before_days=int(table["drift"]["before_days"]),
            p_value=float(table["drift"]["p_value"]),
            drift=tolerances(table["drift"]["parameters"]),
            duplicate_min_values=int(table["duplicates"]["min_values"]),
            duplicate_rounding={k: int(v) for k, v in table["duplicates"]["rounding"].items()},
            across=tolerances(table["across_devices"]["parameters"]),
            repeated=tuple(RepeatRule.of(spec) for spec in table.get("repeated", [])),
            silent_days=int(table.get("silent_devices", {}).get("days", 7)),
        )


@dataclass(frozen=True)
class MedianAbove:
    device: str
    procedure: str
    level: DoseLevel
    median: float
    n: int


@dataclass(frozen=True)
class Drift:
    device: str
    procedure: str
    protocol: str
    field: str
    tolerance: Tolerance
    before: float  # medians
    after: float
    n_before: int
    n_after: int
    p_value: float


@dataclass(frozen=True)
class Duplicates:
    device: str
    protocols: tuple[str, ...]
    signature: tuple[tuple[str, Any], ...]  # (field, rounded median), acquisition type first


@dataclass(frozen=True)
class AcrossDevices:
    procedure: str
    field: str
    tolerance: Tolerance
    medians: tuple[tuple[str, float, int], ...]  # (device, median, n), lowest first


def medians_above(
    rows: Iterable[DoseFact],
    levels_of: Callable[[DoseFact], list[DoseLevel]],
    min_values: int,
) -> list[MedianAbove]:
    """Per device, standard procedure and applicable DRL: the median of the values the level
    is set for, where there are at least `min_values` of them and the median is above it."""
    values: dict[tuple[str, str, DoseLevel], list[float]] = defaultdict(list)
    for row in rows:
        if not row.device or not row.procedure or row.acquisition_type == _SCOUT:
            continue
        for level in levels_of(row):
            field, row_level = LEVEL_FIELDS.get((level.quantity_code, level.per), ("", ""))
            value = getattr(row, field, None) if row.level == row_level else None
            if value is not None and value > 0:
                values[(row.device, row.procedure, level)].append(value)
    found = []
    for (device, procedure, level), group in values.items():
        if len(group) >= min_values:
            middle = statistics.median(group)
            if middle > level.value:
                found.append(MedianAbove(device, procedure, level, middle, len(group)))
    return sorted(found, key=lambda m: (m.device, m.procedure, m.level.key))


def drifts(before: Iterable[DoseFact], after: Iterable[DoseFact], table: Table) -> list[Drift]:
    """Per device, standard procedure and protocol: each parameter whose median moved beyond
    its tolerance between the two periods, with distributions that differ (rank-sum test)."""
    early, late = _by_device_protocol(before), _by_device_protocol(after)
    found = []
    for key in sorted(early.keys() & late.keys()):
        for field, tolerance in table.drift.items():
            a = _values(early[key], field)
            b = _values(late[key], field)
            if len(a) < table.min_values or len(b) < table.min_values:
                continue
            median_a, median_b = statistics.median(a), statistics.median(b)
            if not tolerance.exceeded(median_a, median_b):
                continue
            p = rank_sum_p(a, b)
            if p < table.p_value:
                found.append(Drift(*key, field, tolerance, median_a, median_b, len(a), len(b), p))
    return found


def duplicate_protocols(rows: Iterable[DoseFact], table: Table) -> list[Duplicates]:
    """Protocols of one device with the same acquisition parameters under different names."""
    protocols: dict[tuple[str, str], list[DoseFact]] = defaultdict(list)
    for (device, _procedure, protocol), events in _by_device_protocol(rows).items():
        protocols[(device, protocol)] += events
    by_signature: dict[tuple[str, tuple[tuple[str, Any], ...]], list[str]] = defaultdict(list)
    for (device, protocol), events in sorted(protocols.items()):
        if len(events) < table.duplicate_min_values:
            continue
        signature: list[tuple[str, Any]] = [
            ("acquisition_type", statistics.mode(e.acquisition_type or "" for e in events))
        ]
        for field, digits in table.duplicate_rounding.items():
            values = _values(events, field)
            signature.append((field, round(statistics.median(values), digits) if values else None))
        by_signature[(device, tuple(signature))].append(protocol)
    return [
        Duplicates(device, tuple(names), signature)
        for (device, signature), names in sorted(by_signature.items(), key=str)
        if len(names) > 1
    ]


def across_devices(rows: Iterable[DoseFact], table: Table) -> list[AcrossDevices]:
    """One standard procedure whose medians differ between devices beyond the tolerance
    (dose totals from the study rows, the rest from the events)."""
    grouped: dict[tuple[str, str], list[DoseFact]] = defaultdict(list)
    for row in rows:
        if row.device and row.procedure and row.acquisition_type != _SCOUT:
            grouped[(row.procedure, row.device)].append(row)
    found = []
    for field, tolerance in table.across.items():
        per_procedure: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
        for (procedure, device), group in sorted(grouped.items()):
            level = "study" if field in ("dlp_mgy_cm", "dap_gy_m2") else "event"
            values = [v for v in _values([r for r in group if r.level == level], field) if v > 0]
            if len(values) >= table.min_values:
                per_procedure[procedure].append((device, statistics.median(values), len(values)))
        for procedure, medians in per_procedure.items():
            ordered = tuple(sorted(medians, key=lambda m: m[1]))
            if len(ordered) > 1 and tolerance.exceeded(ordered[0][1], ordered[-1][1]):
                found.append(AcrossDevices(procedure, field, tolerance, ordered))
    return found


def repeated_examinations(
    rows: Iterable[DoseFact], rules: Iterable[RepeatRule], now: float
) -> list[Repeated]:
    """Patients whose study rows of the window before `now` meet a rule (one finding per
    patient and rule, naming every examination in the window)."""
    studies = [r for r in rows if r.level == "study"]
    found = []
    for rule in rules:
        since = now - rule.window_days * 86400
        by_patient: dict[str, list[DoseFact]] = defaultdict(list)
        for row in studies:
            date, patient = row.date, row.patient
            wanted = patient and row.modality in rule.modalities
            if wanted and date is not None and since <= date < now:
                by_patient[str(patient)].append(row)
        for patient, mine in sorted(by_patient.items()):
            mine.sort(key=lambda r: r.date or 0.0)
            sums = tuple((field, math.fsum(_values(mine, field))) for field, _ in rule.sums)
            counted = rule.examinations is not None and len(mine) >= rule.examinations
            summed = any(
                total >= level for (_, total), (_, level) in zip(sums, rule.sums, strict=True)
            )
            if counted or summed:
                found.append(Repeated(rule, patient, tuple(r.resource for r in mine), sums,
                                      mine[0].date or 0.0, mine[-1].date or 0.0))  # fmt: skip
    return found


def rank_sum_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of the Mann-Whitney U test, normal approximation with tie correction
    (fine from about 10 values per side, which `min_values` asks for)."""
    ranked = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(ranked)
    ties = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    n = n1 + n2
    u = sum(r for r, (_, side) in zip(ranks, ranked, strict=True) if side == 0) - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0  # every value equal: nothing differs
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return math.erfc(max(z, 0.0) / math.sqrt(2))


def _values(rows: Iterable[DoseFact], field: str) -> list[float]:
    return [v for v in (getattr(r, field) for r in rows) if v is not None]


def _by_device_protocol(rows: Iterable[DoseFact]) -> dict[tuple[str, str, str], list[DoseFact]]:
    """Event rows by (device, standard procedure or "", protocol)."""
    grouped: dict[tuple[str, str, str], list[DoseFact]] = defaultdict(list)
    for row in rows:
        usable = row.level == "event" and row.acquisition_type != _SCOUT
        if usable and row.device and row.protocol:  # some acquisitions are no procedure
            grouped[(row.device, row.procedure or "", row.protocol)].append(row)
    return grouped
