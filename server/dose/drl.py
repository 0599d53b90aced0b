"""Diagnostic reference levels and other dose levels: what a dose value is compared with.

A level names the quantity by its DICOM code and where in a report it sits (`per`: a value of
each irradiation event, or the examination's total), the population it applies to, and
whether it is a DRL in force that was read in the authority's own text. Values are kept in
the canonical unit of their quantity (mGy, mGy.cm, Gy.m2).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from server.dose.units import UnitTable


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
