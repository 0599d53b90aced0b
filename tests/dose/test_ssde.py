"""SSDE (AAPM Report 204 fit, AAPM 220 water-equivalent diameter, age table): the factors
against the published fit's values, and the SSDE of each event of a real Siemens RDSR."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from server.dicom.read import Read, read_dicom
from server.dose.ssde import from_age, from_water_equivalent_diameter, size_of, ssde
from server.mappings import ssde_tables, unit_table

FLASH = Path(__file__).parent.parent / "data/dicom/openrem/CT-RDSR-Siemens_Flash-TAP-SS.dcm"
BODY, HEAD = "113691", "113690"  # IEC body (32 cm) and head (16 cm) CTDI phantoms

# f = a*exp(-b*D) at D (cm), 4 decimals, as ../shared/data/reference/ssde_conversion.csv
# computes it from AAPM 204's coefficients
FACTORS = {
    BODY: {8: 2.7615, 20: 1.7774, 30: 1.2311, 40: 0.8528, 45: 0.7097},
    HEAD: {8: 1.3755, 20: 0.8644, 30: 0.5869, 40: 0.3985, 45: 0.3284},
}


@pytest.mark.parametrize("phantom", [BODY, HEAD])
def test_conversion_factors_are_aapm_204s(phantom: str) -> None:
    tables = ssde_tables()
    for diameter_cm, factor in FACTORS[phantom].items():
        size = from_water_equivalent_diameter(diameter_cm, tables)
        estimate = ssde(10.0, phantom, size, tables)
        assert estimate is not None
        assert estimate.factor == pytest.approx(factor, abs=5e-5)
        assert estimate.ssde_mgy == pytest.approx(10.0 * factor, abs=5e-4)
        assert (estimate.method.code, estimate.phantom) == (
            "113988",
            {BODY: "32", HEAD: "16"}[phantom],
        )


def test_no_estimate_outside_the_fit_or_for_an_unknown_phantom() -> None:
    tables = ssde_tables()
    assert ssde(10.0, BODY, from_water_equivalent_diameter(7.9, tables), tables) is None
    assert ssde(10.0, BODY, from_water_equivalent_diameter(45.1, tables), tables) is None
    assert ssde(10.0, "999999", from_water_equivalent_diameter(30, tables), tables) is None


def test_a_childs_size_from_age_and_none_for_adults() -> None:
    tables = ssde_tables()
    assert from_age(0.0, tables).diameter_cm == 11.2  # type: ignore[union-attr]
    assert from_age(5.0, tables).diameter_cm == 18.5  # type: ignore[union-attr]
    assert from_age(5.5, tables).diameter_cm == pytest.approx(18.75)  # type: ignore[union-attr]
    assert from_age(18.0, tables).diameter_cm == 29.2  # type: ignore[union-attr]
    assert from_age(18.5, tables) is None and from_age(67.6, tables) is None
    size = from_age(10.0, tables)
    assert size is not None and size.method.code == "113937"
    estimate = ssde(5.0, BODY, size, tables)  # a 10-year-old: 21.6 cm
    assert estimate is not None and estimate.ssde_mgy == pytest.approx(
        5.0 * 3.704369 * 2.718281828 ** (-0.03671937 * 21.6)
    )


def test_the_events_of_a_siemens_rdsr() -> None:
    """The Flash's four events (CTDIvol 0.14, 1.2, 3.61, 9.91 mGy, IEC body phantom) for a
    patient whose water-equivalent diameter is 30 cm: SSDE = 1.2311 x CTDIvol."""
    outcome = read_dicom(FLASH, unit_table())
    assert isinstance(outcome, Read)
    tables = ssde_tables()
    size = from_water_equivalent_diameter(30.0, tables)
    events = outcome.report.ct_events
    # the file reports no SSDE or Dw itself (no file of the corpus does)
    assert all(e.ssde_mgy is None and e.water_equivalent_diameter_mm is None for e in events)
    estimates = []
    for event in events:
        assert event.ctdivol_mgy is not None and event.phantom is not None
        estimates.append(ssde(event.ctdivol_mgy, event.phantom.value, size, tables))
    assert [e.ssde_mgy if e else None for e in estimates] == pytest.approx(
        [v * 1.2311 for v in (0.14, 1.2, 3.61, 9.91)], abs=1e-3
    )


def test_the_best_size_the_data_allow() -> None:
    """Dw first (it accounts for attenuation), then the device's effective diameter, then
    sqrt(AP x lateral) (AAPM 204's effective diameter), then a child's age."""
    tables = ssde_tables()
    everything = size_of(tables, 250.0, 260.0, 300.0, 200.0, 6.0)
    assert everything is not None and (everything.diameter_cm, everything.method.code) == (
        25.0,
        "113988",
    )
    derived = size_of(tables, None, 260.0, 300.0, 200.0, 6.0)
    assert derived is not None and derived.diameter_cm == 26.0
    assert derived.method.code == "aapm204-effective-diameter"
    assert derived.method.system == "https://kerma.example.org/fhir/CodeSystem/calculation-method"
    measured = size_of(tables, None, None, 300.0, 200.0, 6.0)
    assert measured is not None and measured.diameter_cm == pytest.approx(
        math.sqrt(30.0 * 20.0), abs=1e-4
    )
    # one dimension alone gives no effective diameter (AAPM 204's tables by lateral or AP
    # alone are not in mappings/dose/ssde.yaml): the age, for a child
    child = size_of(tables, None, None, 300.0, None, 6.0)
    assert child is not None and (child.diameter_cm, child.method.code) == (19.0, "113937")
    assert size_of(tables, None, None, 300.0, None, 40.0) is None
