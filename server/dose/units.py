"""One unit per quantity: conversion between UCUM codes, backed by one table.

The table (`mappings/units.csv`, loaded by `server.mappings.unit_table`) gives each UCUM code
its quantity and its factor to the canonical unit of that quantity. An unknown unit is an
error, never a silent pass-through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class UnknownUnit(ValueError):
    """A unit code that is not in the unit table."""


class IncompatibleUnits(ValueError):
    """Two units of different quantities (e.g. mGy and mGy.cm)."""


@dataclass(frozen=True)
class Unit:
    code: str
    quantity: str
    factor_to_canonical: float
    canonical_code: str


class UnitTable:
    """Conversions between the UCUM codes of the table.

    >>> table = UnitTable([Unit("Gy.m2", "dap", 1.0, "Gy.m2"), Unit("mGy.cm2", "dap", 1e-7, "Gy.m2")])
    >>> table.convert(2.5e-4, "Gy.m2", "mGy.cm2")
    2500.0
    >>> table.canonical(2500.0, "mGy.cm2")
    (0.00025, 'Gy.m2')
    >>> table.canonical(1.0, "furlong")
    Traceback (most recent call last):
    ...
    server.dose.units.UnknownUnit: unknown unit 'furlong'
    """

    def __init__(self, units: Iterable[Unit], aliases: dict[str, str] | None = None) -> None:
        self._units = {u.code: u for u in units}
        self._aliases = aliases or {}
        # an annotation ({X-Ray sources}) is a name, not a unit: vendors spell it with other
        # capitals, so it is found whatever its case
        self._annotated = {c.casefold(): c for c in self._units if "{" in c}

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def resolve(self, written: str) -> str:
        """The UCUM code for a unit as a device wrote it (`mGycm` -> `mGy.cm`).

        >>> UnitTable([Unit("mGy.cm", "dlp", 1.0, "mGy.cm")], {"mGycm": "mGy.cm"}).resolve("mGycm")
        'mGy.cm'
        >>> UnitTable([Unit("{X-Ray sources}", "count", 1, "{X-Ray sources}")]).resolve("{X-ray sources}")
        '{X-Ray sources}'
        """
        code = self._aliases.get(written, written)
        if code not in self._units:
            code = self._annotated.get(code.casefold(), "")
        if not code:
            raise UnknownUnit(f"unknown unit {written!r}")
        return code

    def unit(self, code: str) -> Unit:
        return self._units[self.resolve(code)]

    def canonical(self, value: float, code: str) -> tuple[float, str]:
        """The value in the canonical unit of its quantity, and that unit's code."""
        unit = self.unit(code)
        return _round(value * unit.factor_to_canonical), unit.canonical_code

    def convert(self, value: float, from_code: str, to_code: str) -> float:
        source, target = self.unit(from_code), self.unit(to_code)
        if source.canonical_code != target.canonical_code:
            raise IncompatibleUnits(f"cannot convert {from_code} to {to_code}")
        return _round(value * source.factor_to_canonical / target.factor_to_canonical)


def _round(value: float) -> float:
    """Drop binary noise from decimal factors (2.5e-4 * 1e7 = 2500.0000000000005)."""
    return float(f"{value:.12g}")
