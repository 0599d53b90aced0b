"""Who a patient is, as the hospital's ADT system says: identity, demographics, size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Identifier:
    value: str
    authority: str  # CX-4: namespace id, else universal id; "" when the sender names none
    type_code: str = ""  # CX-5, e.g. MR


@dataclass(frozen=True)
class Address:
    lines: tuple[str, ...]
    city: str
    state: str
    postal_code: str
    country: str
    use: str  # XAD-7


@dataclass(frozen=True)
class PatientRecord:
    identifiers: tuple[Identifier, ...]
    family: str = ""
    given: tuple[str, ...] = ()
    prefix: str = ""
    suffix: str = ""
    birth_date: date | None = None
    gender: str | None = None
    addresses: tuple[Address, ...] = ()
    height_m: float | None = None
    weight_kg: float | None = None
    measured: datetime | None = None
