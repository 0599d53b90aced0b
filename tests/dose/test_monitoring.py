"""The monitoring statistics: the rank-sum test against published values, tolerances, and
the edge cases of the detectors."""

from __future__ import annotations

import math

import pytest

from server.dose.facts import DoseFact
from server.dose.monitoring import Tolerance, drifts, medians_above, rank_sum_p
from server.mappings import monitoring_table, national_levels


def test_rank_sum_p_against_the_normal_approximation_by_hand() -> None:
    # no overlap, 10 v 10: U = 0, mean 50, sd sqrt(10*10*21/12) = 13.229; z = 49.5/13.229 = 3.742
    p = rank_sum_p([float(v) for v in range(10)], [float(v) for v in range(10, 20)])
    assert p == pytest.approx(math.erfc(3.7417 / math.sqrt(2)), rel=1e-3)
    assert p == pytest.approx(0.000183, rel=0.01)
    assert rank_sum_p([1.0] * 12, [1.0] * 12) == 1.0  # all tied: nothing differs
    same = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert rank_sum_p(same, list(reversed(same))) == 1.0


def test_tolerances() -> None:
    kvp = Tolerance("kVp", "kV", absolute=5)
    assert kvp.exceeded(120, 126) and not kvp.exceeded(120, 125)
    ctdi = Tolerance("CTDIvol", "mGy", relative=0.15)
    assert ctdi.exceeded(10, 11.6) and ctdi.exceeded(10, 8.4) and not ctdi.exceeded(10, 11.4)
    assert not ctdi.exceeded(0, 5)  # no relative change from nothing


def _row(n: int, day: float, **values: float) -> DoseFact:
    return DoseFact(key=f"event:{n}", level="event", study_uid=str(n), resource="Observation/x",
                    modality="CT", device="Device/a", date=day * 86400.0, protocol="Head",
                    procedure="CT Head wo IV Contrast", **values)  # type: ignore[arg-type]  # fmt: skip


def test_a_kvp_change_is_a_drift_and_the_unchanged_mas_is_not() -> None:
    table = monitoring_table()
    before = [_row(i, i, kvp_kv=120, exposure_mas=200 + i % 3) for i in range(12)]
    after = [_row(100 + i, 50 + i, kvp_kv=100, exposure_mas=200 + i % 3) for i in range(12)]
    [found] = drifts(before, after, table)
    assert (found.field, found.before, found.after) == ("kvp_kv", 120, 100)
    assert found.p_value < 1e-4
    assert drifts(before[:9], after, table) == []  # too few before


def test_median_above_needs_enough_values() -> None:
    [level] = [
        lv
        for lv in national_levels()
        if lv.key == "ukhsa-gb-2022/drl/ct/head/acute-stroke/18-y-kg/113830"
    ]
    rows = [_row(i, i, ctdivol_mgy=50 + i) for i in range(10)]
    [found] = medians_above(rows, lambda _: [level], 10)
    assert (found.median, found.n, found.level.value) == (54.5, 10, 47.0)
    assert medians_above(rows[:9], lambda _: [level], 10) == []
    assert (
        medians_above([_row(i, i, ctdivol_mgy=40) for i in range(10)], lambda _: [level], 10) == []
    )
