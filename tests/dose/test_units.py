"""The unit table: conversions the dose report formats need (fhir-dose-mapping.md, appendix B)."""

from __future__ import annotations

import pytest

from server.dose.units import IncompatibleUnits, UnknownUnit
from server.mappings import unit_table


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1.0, "Gy.m2", "mGy.cm2", 10_000_000.0),  # RDSR DAP -> HL7 IG examples
        (1.0, "Gy.m2", "Gy.cm2", 10_000.0),
        (1.0, "Gy.m2", "uGy.m2", 1_000_000.0),
        (250.0, "dGy.cm2", "Gy.m2", 0.0025),  # DX header (0018,115E) -> RDSR unit
        (1.0, "dGy.cm2", "mGy.cm2", 100.0),
        (0.0123, "Gy", "mGy", 12.3),  # Dose (RP)
        (1.5, "dGy", "mGy", 150.0),  # MG OrganDose
        (2.0, "mA.s", "uA.s", 2000.0),
        (1.75, "m", "cm", 175.0),
        (0.5, "Gy.cm", "mGy.cm", 500.0),
    ],
)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert unit_table().convert(value, source, target) == expected


def test_unknown_and_incompatible_units_are_errors() -> None:
    with pytest.raises(UnknownUnit):
        unit_table().convert(1.0, "R", "mGy")
    with pytest.raises(IncompatibleUnits):
        unit_table().convert(1.0, "mGy", "mGy.cm")
