"""Plausibility checks (I9): physical bounds and totals against events."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from server.dose.ages import exact_age
from server.dose.model import (
    CtEvent,
    CtSource,
    CtTotals,
    DoseReport,
    Equipment,
    Patient,
    Source,
    Study,
)
from server.dose.plausibility import check, plausible_patient
from server.mappings import plausibility_bounds


def _report(*events: CtEvent, totals: CtTotals | None = None) -> DoseReport:
    return DoseReport(
        kind="ct",
        source=Source("1.2.3", "1.2.840.10008.5.1.4.1.1.88.67"),
        patient=Patient(),
        study=Study("1.2.4"),
        equipment=Equipment(),
        ct_totals=totals,
        ct_events=events,
    )


def test_values_outside_physical_bounds_are_flagged_not_dropped() -> None:
    event = CtEvent("1.1", ctdivol_mgy=5000.0, dlp_mgy_cm=100.0, sources=(CtSource(kvp_kv=20.0),))
    findings = check(_report(event), plausibility_bounds())
    assert {(f.path, f.code) for f in findings} == {
        ("ct_events[0].ctdivol_mgy", "out-of-range"),
        ("ct_events[0].sources[0].kvp_kv", "out-of-range"),
    }
    assert all(f.severity == "warning" for f in findings)


def test_totals_are_checked_against_their_events() -> None:
    events = (
        CtEvent("1.1", ctdivol_mgy=10.0, dlp_mgy_cm=300.0),
        CtEvent("1.2", ctdivol_mgy=10.0, dlp_mgy_cm=400.0),
    )
    assert check(_report(*events, totals=CtTotals(2, 700.4)), plausibility_bounds()) == ()
    findings = check(_report(*events, totals=CtTotals(3, 900.0)), plausibility_bounds())
    assert [f.code for f in findings] == ["inconsistent-total", "inconsistent-count"]
    assert "900 mGy.cm but its events sum to 700 mGy.cm" in findings[0].message


def _patient(**values: object) -> DoseReport:
    return replace(_report(), patient=Patient(**values))  # type: ignore[arg-type]


def test_a_placeholder_birth_date_gives_way_to_the_patient_age_sent() -> None:
    """9999-01-01 on a study of 2021-06-01: -7,977 years. The Age String says 63."""
    sent = _patient(birth_date=date(9999, 1, 1), age_years=exact_age(date(9999, 1, 1), date(2021, 6, 1)),
                    stated_age_years=63.0)  # fmt: skip
    report, [finding] = plausible_patient(sent, plausibility_bounds())
    assert (report.patient.age_years, report.patient.birth_date) == (63.0, None)
    assert (finding.path, finding.code) == ("patient.age_years", "implausible-age")
    assert finding.message == ("birth date 9999-01-01 gives an age of -7978 years: not used; "
                               "Patient Age (63 years) used instead")  # fmt: skip


def test_placeholders_before_1900_and_impossible_bodies_are_not_used() -> None:
    old = _patient(birth_date=date(1899, 12, 30), age_years=121.4, weight_kg=700.0, size_m=1.7)
    report, findings = plausible_patient(old, plausibility_bounds())
    assert (report.patient.age_years, report.patient.weight_kg, report.patient.size_m) == (
        None,
        None,
        1.7,
    )
    assert [f.code for f in findings] == ["implausible-age", "implausible-body"]
    assert "no age used" in findings[0].message and "weight_kg = 700 kg" in findings[1].message
    # a placeholder date even where the age it gives is possible (a study of 1990: 90 years)
    report, [finding] = plausible_patient(_patient(birth_date=date(1899, 12, 30), age_years=90.0),
                                          plausibility_bounds())  # fmt: skip
    assert report.patient.age_years is None and "is before" not in finding.message


def test_a_plausible_patient_is_left_as_sent() -> None:
    sent = _patient(birth_date=date(1958, 3, 1), age_years=63.25, stated_age_years=63.0,
                    size_m=1.8, weight_kg=82.0)  # fmt: skip
    assert plausible_patient(sent, plausibility_bounds()) == (sent, ())
