"""Diagnostic reference levels and other dose levels: what a dose value is compared with.

A level names the quantity by its DICOM code and where in a report it sits (`per`: a value of
each irradiation event, or the examination's total), the population it applies to, and
whether it is a DRL in force that was read in the authority's own text. Values are kept in
the canonical unit of their quantity (mGy, mGy.cm, Gy.m2).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from server.dose.facts import within
from server.dose.model import DoseReport
from server.dose.units import UnitTable

ADULT_YEARS = 18  # below it, paediatric levels apply


@dataclass(frozen=True)
class DoseLevel:
    set: str  # "UKHSA GB 2022", or a local set's name
    authority: str
    country: str
    year: int
    modality: str
    examination: str
    clinical_indication: str
    quantity_code: str  # DCM: 113830 CTDIvol, 113813 DLP total, 122130 DAP, 113722 DAP total...
    quantity: str
    per: str  # "event" or "examination"
    value: float  # in `unit`, the canonical unit of the quantity
    unit: str
    kind: str  # DRL (reference level), VGD (optimisation target), alert
    population: str = "adult"
    age_min_years: float | None = None
    age_max_years: float | None = None
    weight_min_kg: float | None = None
    weight_max_kg: float | None = None
    phantom: str = ""
    current: bool = True
    verified: bool = False
    verification: str = ""
    source: str = ""
    # the standard procedures it applies to, when the level names them itself (a level made
    # over the API); national levels name theirs in mappings/drl/procedures.csv
    procedures: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def key(self) -> str:
        """What identifies the level within all sets (its FHIR identifier): words and numbers
        only, so that it needs no escaping in a search."""
        band = f"{_text(self.age_min_years)}-{_text(self.age_max_years)}y-{_text(self.weight_min_kg)}-{_text(self.weight_max_kg)}kg"
        parts = (
            self.set,
            self.kind,
            self.modality,
            self.examination,
            self.clinical_indication,
            band,
            self.quantity_code,
        )
        return "/".join(_slug(p) for p in parts)


def levels_from_rows(rows: list[dict[str, str]], units: UnitTable) -> list[DoseLevel]:
    """The levels of a table (mappings/drl/*.csv) that can be compared with dose values."""
    found = []
    for row in rows:
        if not row["quantity_code"] or not row["unit"]:
            continue  # kept in the table for people, not comparable as printed
        value, unit = units.canonical(float(row["value"]), row["unit"])
        found.append(
            DoseLevel(
                set=row["set"],
                authority=row["authority"],
                country=row["country"],
                year=int(row["year"]),
                modality=row["modality"],
                examination=row["examination"],
                clinical_indication=row["clinical_indication"],
                quantity_code=row["quantity_code"],
                quantity=row["quantity"],
                per=row["per"],
                value=value,
                unit=unit,
                kind=row["kind"],
                population=row["population"],
                age_min_years=_number(row["age_min_years"]),
                age_max_years=_number(row["age_max_years"]),
                weight_min_kg=_number(row["weight_min_kg"]),
                weight_max_kg=_number(row["weight_max_kg"]),
                phantom=row["phantom"],
                current=row["current"] == "yes",
                verified=row["verified"] == "yes",
                verification=row["verification"],
                source=row["source"],
            )
        )
    return found


def _number(text: str) -> float | None:
    return float(text) if text else None


def _text(number: float | None) -> str:
    return "" if number is None else f"{number:g}"


def _slug(text: str) -> str:
    """Lower-case words and numbers joined by "-" (accents dropped)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9.]+", "-", plain).strip("-")


@dataclass(frozen=True)
class Value:
    """A dose value of a report, as levels name it."""

    quantity_code: str
    per: str  # "event" or "examination"
    value: float  # canonical unit of the quantity
    event_uid: str | None = None


@dataclass(frozen=True)
class Exceedance:
    level: DoseLevel
    value: Value

    @property
    def ratio(self) -> float:
        return self.value.value / self.level.value


def applicable(
    levels: list[DoseLevel],
    procedures: dict[tuple[str, str], frozenset[str]],
    procedure: str,
    age_years: float | None,
    weight_kg: float | None = None,
    kind: str = "DRL",
) -> list[DoseLevel]:
    """The levels of a kind (DRL, alert) in force that apply to an examination of that
    standard procedure, age and weight (unknown age: adult levels; levels by weight band only
    when the weight is known)."""
    age = float(ADULT_YEARS) if age_years is None else age_years
    return [
        lv
        for lv in levels
        if lv.kind == kind
        and lv.current
        and procedure in (lv.procedures or procedures.get((lv.set, lv.examination), frozenset()))
        and _within(age, lv.age_min_years, lv.age_max_years)
        and (lv.population != "paediatric" or age < ADULT_YEARS)
        and (
            lv.weight_max_kg is None
            or (weight_kg is not None and _within(weight_kg, lv.weight_min_kg, lv.weight_max_kg))
        )
    ]


def _within(x: float, low: float | None, high: float | None) -> bool:
    """Bands are half-open, as RP 185 writes them (5-<15 kg)."""
    return (low is None or x >= low) and (high is None or x < high)


def exceedances(levels: list[DoseLevel], values: list[Value]) -> list[Exceedance]:
    """Each value above a level of its quantity and place in the report."""
    return [
        Exceedance(lv, v)
        for lv in levels
        for v in values
        if v.quantity_code == lv.quantity_code and v.per == lv.per and v.value > lv.value
    ]


def procedure_map(rows: list[dict[str, str]]) -> dict[tuple[str, str], frozenset[str]]:
    """(set, examination) -> the standard procedures a level of that examination applies to."""
    return {(r["set"], r["examination"]): frozenset(r["procedures"].split()) for r in rows}


# a value's dose-fact field (mappings/dose/plausibility.yaml `facts` bounds) and the factor
# from the value's unit to the field's
_FACT_FIELDS = {"113830": ("ctdivol_mgy", 1.0), "113838": ("dlp_mgy_cm", 1.0),
                "113813": ("dlp_mgy_cm", 1.0), "122130": ("dap_gy_m2", 1.0),
                "113722": ("dap_gy_m2", 1.0), "113725": ("dose_rp_gy", 0.001)}  # fmt: skip


def plausible_values(values: list[Value], bounds: Mapping[str, Sequence[float]]) -> list[Value]:
    """The values that may be compared with levels: finite, and within the bounds a dose fact
    has (an impossible value raises no alert above a DRL; the reader's finding shows it).

    >>> [v.value for v in plausible_values([Value("113830", "event", 1e308), Value("113830",
    ...  "event", 12.0), Value("113725", "examination", 60000.0)], {"ctdivol_mgy": [0, 1000],
    ...  "dose_rp_gy": [0, 50]})]
    [12.0]
    """
    kept = []
    for v in values:
        field, factor = _FACT_FIELDS.get(v.quantity_code, ("", 1.0))
        if within(v.value * factor, bounds.get(field, (-math.inf, math.inf))):
            kept.append(v)
    return kept


def report_values(report: DoseReport) -> list[Value]:
    """The values of a report that levels are set for: per event CTDIvol, DLP and DAP, and
    the examination's DLP and DAP totals, and for fluoroscopy its Dose (RP) total (mGy) and
    fluoroscopy time (s)."""
    values = []
    for ct in report.ct_events:
        values += [
            Value(code, "event", v, ct.event_uid)
            for code, v in (("113830", ct.ctdivol_mgy), ("113838", ct.dlp_mgy_cm))
            if v is not None
        ]
    for pe in report.projection_events:
        if pe.dap_gy_m2 is not None:
            values.append(Value("122130", "event", pe.dap_gy_m2, pe.event_uid))
    if report.ct_totals and report.ct_totals.dlp_total_mgy_cm is not None:
        values.append(Value("113813", "examination", report.ct_totals.dlp_total_mgy_cm))
    dap_total = sum(t.dap_total_gy_m2 for t in report.projection_totals if t.dap_total_gy_m2)
    if dap_total:
        values.append(Value("113722", "examination", dap_total))
    for code, name, factor in (
        ("113725", "dose_rp_total_gy", 1000.0),
        ("113730", "fluoro_time_s", 1.0),
    ):
        total = sum(getattr(t, name) or 0.0 for t in report.projection_totals)
        if total:
            values.append(Value(code, "examination", total * factor))
    return values
