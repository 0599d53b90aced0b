"""The German significant-event criteria (StrlSchV Anlage 14) as shipped, evaluated."""

from __future__ import annotations

import pytest

from server.dose.alerts import evaluate
from server.dose.drl import DoseLevel, Value
from server.mappings import alert_rules

ANNEX_14 = list(alert_rules("de_strlschv_annex14"))
DRL = DoseLevel("UKHSA GB 2022", "UKHSA", "GB", 2022, "CT", "Chest", "", "113830", "Mean CTDIvol",
                "event", 8.5, "mGy", "DRL")  # fmt: skip


def _ids(modality: str, region: str, *values: Value, drls: tuple[DoseLevel, ...] = ()) -> list[str]:
    return [a.rule.id for a in evaluate(ANNEX_14, modality, region, list(values), list(drls))]


def test_ct_ctdivol_thresholds_by_region() -> None:
    assert _ids("CT", "head", Value("113830", "event", 121.0, "e1")) == ["ct-head-ctdivol"]
    assert _ids("CT", "head", Value("113830", "event", 119.0, "e1")) == []
    assert _ids("CT", "body", Value("113830", "event", 81.0, "e1")) == ["ct-body-ctdivol"]
    assert _ids("CT", "body", Value("113813", "examination", 5000.0)) == []  # no DLP criterion


def test_fluoroscopy_dap_in_cgy_cm2() -> None:
    [rule] = [r for r in ANNEX_14 if r.id == "fluoroscopy-dap"]
    assert rule.above == pytest.approx(0.02)  # 20,000 cGy·cm² = 200 Gy·cm² = 0.02 Gy·m²
    assert _ids("RF", "body", Value("113722", "examination", 0.021)) == ["fluoroscopy-dap"]
    assert _ids("XA", "body", Value("113722", "examination", 0.019)) == []
    assert _ids("DX", "body", Value("113722", "examination", 0.021)) == []


def test_three_times_the_drl() -> None:
    over = _ids("CT", "body", Value("113830", "event", 26.0, "e1"), drls=(DRL,))
    assert over == ["drl-3x"]  # 26 > 3 x 8.5
    assert _ids("CT", "body", Value("113830", "event", 25.0, "e1"), drls=(DRL,)) == []


def test_an_unknown_rule_set_is_named() -> None:
    with pytest.raises(ValueError, match="no alert rule set 'xx'"):
        alert_rules("xx")
