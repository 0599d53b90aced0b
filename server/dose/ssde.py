"""Size-specific dose estimate (SSDE) for CT, pure: SSDE = f x CTDIvol with AAPM Report 204's
fit f = a * exp(-b * D), D the patient's diameter in cm (the water-equivalent diameter Dw of
AAPM Report 220, or the effective diameter estimated from age), a and b per CTDI phantom.
Coefficients, the age table and the method codes are in mappings/dose/ssde.yaml.

>>> tables = SsdeTables.of({"version": "v", "diameter_range_cm": [8, 45],
...     "fits": {"32": {"a": 3.704369, "b": 0.03671937}}, "phantoms": {"113691": "32"},
...     "methods": {"water_equivalent": {"code": "113988", "display": "Dw"},
...                 "age": {"code": "113937", "display": "age"}},
...     "age_effective_diameter_cm": [[0, 11.2], [1, 15.1]]})
>>> estimate = ssde(10.0, "113691", from_water_equivalent_diameter(30.0, tables), tables)
>>> round(estimate.ssde_mgy, 2), estimate.method.code, round(estimate.factor, 4)
(12.31, '113988', 1.2311)
>>> from_age(0.5, tables).diameter_cm
13.15
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"


@dataclass(frozen=True)
class Method:
    """How the patient's size was obtained (DICOM CID 10023 where it has a code)."""

    code: str
    display: str
    system: str = DCM_SYSTEM


@dataclass(frozen=True)
class Size:
    diameter_cm: float
    method: Method


@dataclass(frozen=True)
class Fit:
    a: float
    b_per_cm: float

    def factor(self, diameter_cm: float) -> float:
        return self.a * math.exp(-self.b_per_cm * diameter_cm)


@dataclass(frozen=True)
class SsdeTables:
    """mappings/dose/ssde.yaml, read."""

    version: str
    diameter_range_cm: tuple[float, float]
    fits: dict[str, Fit]  # by phantom diameter, "32" or "16"
    phantoms: dict[str, str]  # CTDIw phantom code -> fit
    methods: dict[str, Method]
    age_table: tuple[tuple[float, float], ...]  # (age in years, effective diameter in cm)

    @classmethod
    def of(cls, table: dict[str, Any]) -> SsdeTables:
        low, high = table["diameter_range_cm"]
        return cls(
            version=str(table["version"]),
            diameter_range_cm=(float(low), float(high)),
            fits={k: Fit(float(v["a"]), float(v["b"])) for k, v in table["fits"].items()},
            phantoms={str(k): str(v) for k, v in table["phantoms"].items()},
            methods={
                k: Method(str(v["code"]), str(v["display"]), str(v.get("system", DCM_SYSTEM)))
                for k, v in table["methods"].items()
            },
            age_table=tuple((float(a), float(d)) for a, d in table["age_effective_diameter_cm"]),
        )


@dataclass(frozen=True)
class Estimate:
    """An SSDE with what it was computed from, for its Observation and Provenance."""

    ssde_mgy: float
    ctdivol_mgy: float
    factor: float
    phantom: str  # "32" or "16"
    size: Size
    version: str
    b_per_cm: float  # the fit's exponent: SSDE changes by this fraction per cm of diameter

    @property
    def method(self) -> Method:
        return self.size.method


def from_water_equivalent_diameter(dw_cm: float, tables: SsdeTables) -> Size:
    return Size(dw_cm, tables.methods["water_equivalent"])


def from_dimensions(lateral_cm: float, ap_cm: float, tables: SsdeTables) -> Size:
    """AAPM 204's effective diameter: the geometric mean of the lateral and AP dimensions."""
    return Size(round(math.sqrt(lateral_cm * ap_cm), 4), tables.methods["effective_diameter"])


def size_of(
    tables: SsdeTables,
    water_equivalent_mm: float | None = None,
    effective_mm: float | None = None,
    lateral_mm: float | None = None,
    ap_mm: float | None = None,
    age_years: float | None = None,
) -> Size | None:
    """The best size the data allow: the water-equivalent diameter (it accounts for the
    patient's attenuation), else the effective diameter the device derived or that its
    lateral and AP dimensions give, else a child's age."""
    if water_equivalent_mm:
        return from_water_equivalent_diameter(water_equivalent_mm / 10, tables)
    if effective_mm:
        return Size(effective_mm / 10, tables.methods["effective_diameter"])
    if lateral_mm and ap_mm:
        return from_dimensions(lateral_mm / 10, ap_mm / 10, tables)
    return from_age(age_years, tables) if age_years is not None else None


def from_age(age_years: float, tables: SsdeTables) -> Size | None:
    """The effective diameter of a child of that age (linear between the table's rows);
    None beyond the table (adults: their size varies too much to guess from age)."""
    ages = [a for a, _ in tables.age_table]
    if not ages or not ages[0] <= age_years <= ages[-1]:
        return None
    i = bisect.bisect_right(ages, age_years) - 1
    if i == len(ages) - 1:
        return Size(tables.age_table[i][1], tables.methods["age"])
    (a0, d0), (a1, d1) = tables.age_table[i], tables.age_table[i + 1]
    diameter = d0 + (d1 - d0) * (age_years - a0) / (a1 - a0)
    return Size(round(diameter, 4), tables.methods["age"])


def ssde(ctdivol_mgy: float, phantom_code: str, size: Size, tables: SsdeTables) -> Estimate | None:
    """The SSDE of one CT irradiation (mGy); None when the phantom is unknown or the
    diameter is outside the range the fit was made for."""
    phantom = tables.phantoms.get(phantom_code)
    low, high = tables.diameter_range_cm
    if phantom is None or phantom not in tables.fits or not low <= size.diameter_cm <= high:
        return None
    fit = tables.fits[phantom]
    factor = fit.factor(size.diameter_cm)
    return Estimate(
        ctdivol_mgy * factor, ctdivol_mgy, factor, phantom, size, tables.version, fit.b_per_cm
    )
