"""Plausibility checks (I9): physical bounds and totals against events."""

from __future__ import annotations

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
from server.dose.plausibility import check
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
