"""Plausibility (I9): each value within physical bounds, totals consistent with their events,
demographics a person can have, examination times a clock can give.

Pure: the bounds come from `mappings/dose/plausibility.yaml`, loaded by the caller. Findings
are warnings kept with the report. Dose values are never dropped or changed; an implausible
age, size or weight is not used (it would enter statistics, exports and SSDE), and the finding
keeps what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from server.dose.model import CtEvent, DoseReport, Finding, ProjectionEvent
from server.dose.patient import PatientRecord

Bounds = Mapping[str, Any]
Event = TypeVar("Event", CtEvent, ProjectionEvent)


def check(report: DoseReport, bounds: Bounds) -> tuple[Finding, ...]:
    return tuple(_ranges(report, bounds)) + tuple(_consistency(report, bounds["consistency"]))


def _ranges(report: DoseReport, bounds: Bounds) -> Iterator[Finding]:
    for i, ct in enumerate(report.ct_events):
        yield from _out_of_range(f"ct_events[{i}]", ct, bounds["ct"])
        for j, source in enumerate(ct.sources):
            yield from _out_of_range(f"ct_events[{i}].sources[{j}]", source, bounds["source"])
    for i, event in enumerate(report.projection_events):
        yield from _out_of_range(f"projection_events[{i}]", event, bounds["projection"])


def _out_of_range(
    path: str, record: object, limits: Mapping[str, list[float]]
) -> Iterator[Finding]:
    for field_name, (low, high) in limits.items():
        value = getattr(record, field_name, None)
        if value is not None and not low <= value <= high:
            yield Finding(
                f"{path}.{field_name}",
                "warning",
                "out-of-range",
                f"{field_name} = {value:g} is outside the physical range [{low:g}, {high:g}]",
            )


def _consistency(report: DoseReport, tolerance: Mapping[str, float]) -> Iterator[Finding]:
    """Totals against the sum of their events: DLP for CT, DAP per plane for projection."""
    relative = tolerance["relative"]
    totals = report.ct_totals
    dlps = [e.dlp_mgy_cm for e in report.ct_events if e.dlp_mgy_cm is not None]
    if totals is not None and totals.dlp_total_mgy_cm is not None and dlps:  # MPPS events: no DLP
        summed = sum(dlps)
        if _differs(summed, totals.dlp_total_mgy_cm, relative, tolerance["dlp_absolute_mgy_cm"]):
            yield Finding(
                "ct_totals.dlp_total_mgy_cm",
                "warning",
                "inconsistent-total",
                f"CT DLP total {totals.dlp_total_mgy_cm:g} mGy.cm but its events sum to {summed:g} mGy.cm",
            )
    if (
        totals is not None
        and totals.total_events is not None
        and totals.total_events != len(report.ct_events)
    ):
        yield Finding(
            "ct_totals.total_events",
            "warning",
            "inconsistent-count",
            f"{totals.total_events} irradiation events declared, {len(report.ct_events)} reported",
        )
    for i, plane in enumerate(report.projection_totals):
        events = [
            e
            for e in report.projection_events
            if plane.plane is None or e.plane is None or e.plane.value == plane.plane.value
        ]
        daps = [e.dap_gy_m2 for e in events if e.dap_gy_m2 is not None]
        if plane.dap_total_gy_m2 is None or not daps:
            continue
        if _differs(sum(daps), plane.dap_total_gy_m2, relative, tolerance["dap_absolute_gy_m2"]):
            yield Finding(
                f"projection_totals[{i}].dap_total_gy_m2",
                "warning",
                "inconsistent-total",
                f"DAP total {plane.dap_total_gy_m2:g} Gy.m2 but its events sum to {sum(daps):g} Gy.m2",
            )


def _differs(summed: float, total: float, relative: float, absolute: float) -> bool:
    """
    >>> _differs(724.52, 724.52, 0.02, 1.0), _differs(700.0, 724.52, 0.02, 1.0)
    (False, True)
    """
    return abs(summed - total) > max(absolute, relative * abs(total))


def plausible_patient(report: DoseReport, bounds: Bounds) -> tuple[DoseReport, tuple[Finding, ...]]:
    """The report with the patient's implausible demographics set aside, and why: an age
    outside the bounds, or from a birth date before the earliest year (placeholders such as
    9999-01-01 or 1899-12-30), gives way to the Patient Age sent when that one is plausible,
    else to none; a size or weight outside human ranges is not used."""
    limits = bounds["patient"]
    patient, findings = report.patient, []
    low, high = limits["age_years"]
    birth = patient.birth_date
    placeholder = birth is not None and birth.year < limits["earliest_birth_year"]
    age = patient.age_years
    if placeholder or (age is not None and not low <= age <= high):
        stated = patient.stated_age_years
        fallback = stated if stated is not None and low <= stated <= high else None
        said = f"birth date {birth.isoformat()}" if birth else "Patient Age"
        why = f"gives an age of {age:.0f} years" if age is not None else "is a placeholder"
        instead = (f"Patient Age ({fallback:g} years) used instead" if fallback is not None
                   else "no age used")  # fmt: skip
        findings.append(Finding("patient.age_years", "warning", "implausible-age",
                                f"{said} {why}: not used; {instead}"))  # fmt: skip
        patient = replace(patient, birth_date=None, age_years=fallback)
    for name, unit in (("size_m", "m"), ("weight_kg", "kg")):
        value, (lowest, highest) = getattr(patient, name), limits[name]
        if value is not None and not lowest <= value <= highest:
            findings.append(Finding(f"patient.{name}", "warning", "implausible-body",
                                    f"{name} = {value:g} {unit} is outside [{lowest:g}, {highest:g}] "
                                    f"{unit}: not used"))  # fmt: skip
            patient = replace(patient, **{name: None})
    return replace(report, patient=patient), tuple(findings)


def plausible_times(
    report: DoseReport, bounds: Bounds, today: date
) -> tuple[DoseReport, tuple[Finding, ...]]:
    """The report with examination times no clock can give set aside, and why: before the
    earliest year (a placeholder, 1899-12-30) or after tomorrow (a modality's clock, or 9999).
    The study's date gives way to the irradiation's start, an event's time to none; the dose
    values stay.

    >>> from server.dose.model import Equipment, Patient, Source, Study, ProjectionEvent
    >>> r = DoseReport("projection", Source("1", "c"), Patient("p"),
    ...     Study("2", started=datetime(9999, 1, 1)), Equipment(),
    ...     irradiation_start=datetime(2026, 3, 4, 10, 0),
    ...     projection_events=(ProjectionEvent("e", started=datetime(1899, 12, 30)),))
    >>> kept, found = plausible_times(r, {"examination": {"earliest_year": 1900}}, date(2026, 12, 5))
    >>> kept.study.started, kept.irradiation_start.year, kept.projection_events[0].started
    (None, 2026, None)
    >>> [f.message for f in found]  # doctest: +NORMALIZE_WHITESPACE
    ['study date 9999-01-01 is a placeholder or a clock error: not used',
     '1 irradiation event dated 1899-12-30 is a placeholder or a clock error: its time not used']
    """
    earliest, latest = bounds["examination"]["earliest_year"], today + timedelta(days=1)

    def wrong(when: datetime | None) -> bool:
        return when is not None and not (earliest <= when.year and when.date() <= latest)

    findings: list[Finding] = []
    study, start, end = report.study, report.irradiation_start, report.irradiation_end
    for name, when in (("study date", study.started), ("irradiation start", start),
                       ("irradiation end", end)):  # fmt: skip
        if when is not None and wrong(when):
            findings.append(Finding(name, "warning", "implausible-time",
                                    f"{name} {when.date().isoformat()} is a placeholder or a clock "
                                    "error: not used"))  # fmt: skip
    report = replace(
        report,
        study=replace(study, started=None) if wrong(study.started) else study,
        irradiation_start=None if wrong(start) else start,
        irradiation_end=None if wrong(end) else end,
    )
    ct_events, ct_found = _untimed(report.ct_events, wrong)
    projection_events, projection_found = _untimed(report.projection_events, wrong)
    report = replace(report, ct_events=ct_events, projection_events=projection_events)
    findings += ct_found + projection_found
    return report, tuple(findings)


def _untimed(
    events: tuple[Event, ...], wrong: Callable[[datetime | None], bool]
) -> tuple[tuple[Event, ...], list[Finding]]:
    """The events with impossible times cleared, and a finding for them."""
    bad = [e for e in events if wrong(e.started)]
    if not bad:
        return events, []
    day = bad[0].started.date().isoformat() if bad[0].started else ""
    said = f"{len(bad)} irradiation event{'s' if len(bad) > 1 else ''} dated {day}"
    finding = Finding("events", "warning", "implausible-time",
                      f"{said} is a placeholder or a clock error: its time not used")  # fmt: skip
    return tuple(replace(e, started=None) if wrong(e.started) else e for e in events), [finding]


def plausible_record(
    record: PatientRecord, bounds: Bounds, today: date
) -> tuple[PatientRecord, tuple[str, ...]]:
    """A patient as the HIS sent them (ADT), with what no person can have set aside by the
    same bounds as a dose report's patient: a birth date before the earliest year, in the
    future or giving an age beyond the bounds, a height or a weight outside human ranges;
    and a note for each."""
    limits, notes = bounds["patient"], []
    birth = record.birth_date
    if birth is not None:
        age = (today - birth).days / 365.25
        if birth.year < limits["earliest_birth_year"] or not 0 <= age <= limits["age_years"][1]:
            notes.append(f"birth date {birth.isoformat()} is a placeholder or impossible: not used")
            record = replace(record, birth_date=None)
    height = _human(record.height_m, "height", "m", limits["size_m"], notes)
    weight = _human(record.weight_kg, "weight", "kg", limits["weight_kg"], notes)
    return replace(record, height_m=height, weight_kg=weight), tuple(notes)


def _human(
    value: float | None, label: str, unit: str, bound: Any, notes: list[str]
) -> float | None:
    """The value when a person can have it; else None, and a note of why."""
    lowest, highest = bound
    if value is None or lowest <= value <= highest:
        return value
    notes.append(f"{label} {value:g} {unit} is outside [{lowest:g}, {highest:g}] {unit}: not used")
    return None
