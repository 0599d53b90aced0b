"""Effective dose from DLP (H4): k-factors of the Med Phys 2012 set by region, age, kVp and
ICRP basis, the spread between published k-factors, and the Siemens Flash's examination."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.dicom.read import Read, read_dicom
from server.dose.effective import effective_dose
from server.mappings import k_factors, unit_table

FLASH = Path(__file__).parent.parent / "data/dicom/openrem/CT-RDSR-Siemens_Flash-TAP-SS.dcm"


def test_k_factors_by_region_age_kvp_and_icrp_basis() -> None:
    table = k_factors()
    adult_chest = effective_dose(100.0, "chest", 45.0, 120.0, table)
    assert adult_chest is not None
    assert (adult_chest.k, adult_chest.age_years, adult_chest.kvp, adult_chest.icrp) == (
        0.0210,
        30.0,
        120.0,
        "103",
    )
    assert adult_chest.effective_dose_msv == pytest.approx(2.10)
    assert adult_chest.spread == pytest.approx((0.0210 - 0.0191) / 0.0210)  # 80 to 120 kV
    # ICRP 60 weights: Shrimpton's adult chest (0.014) is among the published values
    icrp60 = effective_dose(100.0, "chest", 45.0, 120.0, table, icrp="60")
    assert icrp60 is not None and icrp60.k == 0.0186
    assert icrp60.spread == pytest.approx((0.0186 - 0.0140) / 0.0186)
    # a 6-year-old's head at 100 kV: the nearest tabulated age (5 y) and voltage
    child = effective_dose(200.0, "head", 6.0, 105.0, table)
    assert child is not None and (child.age_years, child.kvp, child.k) == (5.0, 100.0, 0.0038)
    # no age known: the adult value; no k-factor for a region: no estimate
    assert effective_dose(100.0, "chest", None, 120.0, table).age_years == 30.0  # type: ignore[union-attr]
    assert effective_dose(100.0, "knee", 40.0, 120.0, table) is None


def test_the_siemens_flash_chest_abdomen_pelvis() -> None:
    """724.52 mGy·cm, a 67-year-old, 120 kV: E = 724.52 x 0.0180 = 13.0 mSv (ICRP 103)."""
    outcome = read_dicom(FLASH, unit_table())
    assert isinstance(outcome, Read)
    report = outcome.report
    assert report.ct_totals is not None and report.ct_totals.dlp_total_mgy_cm == pytest.approx(
        724.52
    )
    kvps = {s.kvp_kv for e in report.ct_events for s in e.sources if s.kvp_kv}
    assert kvps == {120.0}
    estimate = effective_dose(report.ct_totals.dlp_total_mgy_cm, "chest_abdomen_pelvis",
                              report.patient.age_years, 120.0, k_factors())  # fmt: skip
    assert estimate is not None
    assert estimate.effective_dose_msv == pytest.approx(724.52 * 0.0180)
    assert estimate.spread == pytest.approx((0.0180 - 0.0162) / 0.0180)
    # the file reports no effective dose itself
    assert report.ct_totals.effective_dose_total_msv is None
