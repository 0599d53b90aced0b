"""Effective dose of a CT examination from its DLP (H4), pure: E = k x DLP with the k-factor of
the scanned region, the patient's age (the nearest tabulated age: 0, 1, 5, 10, 15, 30 y,
30 standing for adults) and the tube voltage (the nearest of 80, 100, 120 kV), from one
peer-reviewed set (mappings/dose/k_factors.csv), with ICRP 103 tissue weights unless ICRP 60
is asked for.

E is a population estimate for a reference person, for comparing protocols and practices: not
a dose or a risk of the individual patient. Its `spread` says how much the published k-factors
for that region and age differ from each other (the kVp variants and, for ICRP 60, Shrimpton's
values), relative to the k used: a between-source spread, not a confidence interval.

>>> table = KFactors.of([
...     {"set": "nci-lee-2012", "icrp": "103", "region": "chest", "age_years": "30", "kvp": "120",
...      "k_msv_per_mgy_cm": "0.02"},
...     {"set": "nci-lee-2012", "icrp": "103", "region": "chest", "age_years": "30", "kvp": "80",
...      "k_msv_per_mgy_cm": "0.018"}])
>>> e = effective_dose(500.0, "chest", 67.0, 120.0, table)
>>> round(e.effective_dose_msv, 3), e.k, round(e.spread, 3), e.age_years, e.kvp
(10.0, 0.02, 0.1, 30.0, 120.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PRIMARY_SET = "nci-lee-2012"


@dataclass(frozen=True)
class KFactor:
    set: str
    icrp: str  # "60" or "103"
    region: str
    age_years: float
    kvp: float | None
    k: float  # mSv per mGy·cm


@dataclass(frozen=True)
class KFactors:
    rows: tuple[KFactor, ...]

    @classmethod
    def of(cls, rows: list[dict[str, str]]) -> KFactors:
        return cls(tuple(
            KFactor(r["set"], r["icrp"], r["region"], float(r["age_years"]),
                    float(r["kvp"]) if r["kvp"] else None, float(r["k_msv_per_mgy_cm"]))
            for r in rows
        ))  # fmt: skip

    def regions(self) -> set[str]:
        return {r.region for r in self.rows}


@dataclass(frozen=True)
class EffectiveDose:
    effective_dose_msv: float
    dlp_mgy_cm: float
    k: float
    region: str
    age_years: float  # the tabulated age used
    kvp: float | None  # the tabulated tube voltage used
    icrp: str
    set: str
    spread: float  # (largest - smallest published k for region and age) / k


def effective_dose(
    dlp_mgy_cm: float,
    region: str,
    age_years: float | None,
    kvp: float | None,
    table: KFactors,
    icrp: str = "103",
    k_set: str = PRIMARY_SET,
) -> EffectiveDose | None:
    """E of one CT examination or acquisition; None without a k-factor for the region."""
    rows = [r for r in table.rows if r.region == region and r.icrp == icrp and r.set == k_set]
    if not rows:
        return None
    adult = max(r.age_years for r in rows)
    age = adult if age_years is None else _nearest({r.age_years for r in rows}, age_years)
    at_age = [r for r in rows if r.age_years == age]
    voltages = {r.kvp for r in at_age if r.kvp is not None}
    voltage = _nearest(voltages, kvp if kvp is not None else max(voltages)) if voltages else None
    [chosen] = [r for r in at_age if r.kvp == voltage]
    published = [r.k for r in table.rows
                 if r.region == region and r.icrp == icrp and r.age_years == age]  # fmt: skip
    spread = (max(published) - min(published)) / chosen.k
    return EffectiveDose(dlp_mgy_cm * chosen.k, dlp_mgy_cm, chosen.k, region, age, voltage,
                         icrp, k_set, spread)  # fmt: skip


def _nearest(values: set[float], wanted: float) -> float:
    """The tabulated value nearest `wanted` (the lower one on a tie)."""
    return min(sorted(values), key=lambda v: abs(v - wanted))


@dataclass(frozen=True)
class ByAcquisition:
    """E of a CT examination without a standard procedure (so without one region): the sum over
    its acquisitions of DLP_i x k of each acquisition's own region and tube voltage."""

    parts: tuple[EffectiveDose, ...]
    left_out_dlp_mgy_cm: float  # acquisitions decided to be of no region: localizers, tracking

    @property
    def effective_dose_msv(self) -> float:
        return sum(p.effective_dose_msv for p in self.parts)

    @property
    def dlp_mgy_cm(self) -> float:
        return sum(p.dlp_mgy_cm for p in self.parts)

    @property
    def spread(self) -> float:
        """The largest between-source spread of the parts' k-factors."""
        return max(p.spread for p in self.parts)

    def by_region(self) -> dict[str, tuple[float, float]]:
        """Region -> (DLP of its acquisitions, their E), in the order the regions first come."""
        out: dict[str, tuple[float, float]] = {}
        for p in self.parts:
            dlp, e = out.get(p.region, (0.0, 0.0))
            out[p.region] = (dlp + p.dlp_mgy_cm, e + p.effective_dose_msv)
        return out


def effective_dose_by_acquisition(
    acquisitions: Sequence[tuple[float, str, float | None]],
    left_out_dlp_mgy_cm: float,
    age_years: float | None,
    table: KFactors,
    icrp: str = "103",
    k_set: str = PRIMARY_SET,
) -> ByAcquisition | None:
    """E from (DLP, region, kVp) of every acquisition with a region; None when there is none
    or a region has no k-factor (an estimate that leaves dose out unsaid is worse than none).

    >>> table = KFactors.of([
    ...     {"set": "nci-lee-2012", "icrp": "103", "region": r, "age_years": "30", "kvp": "120",
    ...      "k_msv_per_mgy_cm": k} for r, k in (("head", "0.002"), ("chest", "0.02"))])
    >>> e = effective_dose_by_acquisition(
    ...     [(800.0, "head", 120.0), (300.0, "chest", 120.0)], 4.0, 60, table)
    >>> round(e.effective_dose_msv, 3), e.dlp_mgy_cm, e.by_region()["chest"]
    (7.6, 1100.0, (300.0, 6.0))
    """
    parts = tuple(
        effective_dose(dlp, region, age_years, kvp, table, icrp, k_set)
        for dlp, region, kvp in acquisitions
    )
    if not parts or any(p is None for p in parts):
        return None
    return ByAcquisition(tuple(p for p in parts if p is not None), left_out_dlp_mgy_cm)
