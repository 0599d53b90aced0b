"""The NHS Breast Screening Programme's mammography dose survey (UK): one CSV line per
exposure in the layout of the NCCPM dose audit database (mappings/exports/nhsbsp_mammography.yaml
names the columns, view codes and exclusions, with their sources). Pseudonymised: examinations
are numbered 1, 2, 3... in date order, ages are whole years; no identifier, date or name.
QA and phantom examinations are left out, as are exposures the survey does not want (biopsy,
specimen, scout...) and exposures without a laterality, view, anode or filter."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from server.dose.ages import calendar_age
from server.mappings import read_yaml
from server.reports.components import Components
from server.store.port import Store

_FACTS = ["resource", "modality", "category", "study_uid", "date", "age_years", "protocol"]
# the Observation components an exposure is read from (DICOM codes; the header attribute)
_LATERALITY, _VIEW, _ANODE, _FILTER = "272741003", "111031", "111632", "113757"
_KVP, _THICKNESS, _EXPOSURE, _CONTROL = "113733", "111633", "113736", "ExposureControlMode"
_CURRENT, _TIME = "113767", "113824"  # Average X-Ray Tube Current, Exposure Time
_EXPOSURE_UNITS = {"uA.s": 0.001, "mA.s": 1.0}  # to mAs


@dataclass(frozen=True)
class Format:
    """mappings/exports/nhsbsp_mammography.yaml, read."""

    columns: tuple[str, ...]
    views: dict[str, str]
    excluded_protocol_words: tuple[str, ...]
    excluded_view_words: tuple[str, ...]
    materials: dict[str, str]

    def material(self, meaning: str) -> str:
        """W, Mo, Rh, Ag, Al; the coded meaning itself for any other."""
        return next((short for word, short in self.materials.items() if word in meaning.lower()),
                    meaning)  # fmt: skip


@functools.cache
def nhsbsp_format() -> Format:
    table = read_yaml("exports/nhsbsp_mammography.yaml")
    return Format(tuple(table["columns"]), dict(table["views"]),
                  tuple(table["excluded_protocol_words"]), tuple(table["excluded_view_words"]),
                  dict(table["materials"]))  # fmt: skip


@dataclass(frozen=True)
class Exposure:
    """What the survey writes of one mammography exposure (an irradiation event)."""

    laterality: str  # "Left", "Right"
    view: str  # the Image View's meaning, e.g. "medio-lateral oblique"
    anode: str
    filter: str
    kvp_kv: float | None
    thickness_mm: float | None
    exposure_mas: float | None
    control_mode: str  # Exposure Control Mode (0018,7060), e.g. "AUTOMATIC"; "" if not given
    protocol: str
    age_years: int | None  # whole years


def line(fmt: Format, exposure: Exposure, number: int, taken: set[str]) -> list[Any] | None:
    """The survey's line of an exposure of examination `number`, whose view codes so far are
    `taken` (a repeated view is numbered: LCC2); None for an exposure the survey leaves out."""
    words = exposure.protocol.lower(), exposure.view.lower()
    if (any(w in words[0] for w in fmt.excluded_protocol_words)
            or any(w in words[1] for w in fmt.excluded_view_words)
            or not (exposure.laterality and exposure.view and exposure.anode and exposure.filter)):  # fmt: skip
        return None
    code = exposure.laterality[:1].upper() + fmt.views.get(exposure.view, exposure.view)
    view = next(c for c in (code, *(f"{code}{n}" for n in range(2, 100))) if c not in taken)
    taken.add(view)
    mode = exposure.control_mode.upper()
    automatic = "AUTO" if "AUTO" in mode else "MANUAL" if "MAN" in mode else ""
    return [1, number, view, exposure.kvp_kv, fmt.material(exposure.anode),
            fmt.material(exposure.filter), exposure.thickness_mm, exposure.exposure_mas, "",
            automatic, exposure.control_mode, "", exposure.age_years, "", ""]  # fmt: skip


def csv_text(store: Store, since: float, until: float, timezone: tzinfo) -> str:
    """The survey of the mammography exposures of [since, until) as CSV (the survey number is
    1 for the physicist to change, as the NCCPM database asks)."""
    fmt = nhsbsp_format()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fmt.columns)
    numbers: dict[str, int] = {}  # the examinations, numbered in date order
    taken: dict[str, set[str]] = {}  # their view codes so far
    for exposure, study in _exposures(store, since, until, timezone):
        number = numbers.get(study, len(numbers) + 1)
        found = line(fmt, exposure, number, taken.setdefault(study, set()))
        if found is not None:  # (an examination of left-out exposures only takes no number)
            numbers[study] = number
            writer.writerow(found)
    return out.getvalue()


def _exposures(
    store: Store, since: float, until: float, timezone: tzinfo
) -> Iterator[tuple[Exposure, str]]:
    """The mammography exposures of patients (QA left out) with their examination's UID."""
    for values in store.fact_rows("event", _FACTS, since, until):
        fact = dict(zip(_FACTS, values, strict=True))
        if fact["modality"] != "MG" or fact["category"] == "qa" or not fact["resource"]:
            continue
        day = datetime.fromtimestamp(fact["date"], timezone).date()
        age = None if fact["age_years"] is None else calendar_age(fact["age_years"], day)
        parts = Components.read(store, str(fact["resource"]))  # (gone: no laterality, left out)
        yield _exposure(parts, fact["protocol"] or "", age), str(fact["study_uid"])


def _exposure(parts: Components, protocol: str, age: int | None) -> Exposure:
    exposure = parts.number(_EXPOSURE, _EXPOSURE_UNITS)
    current, seconds = parts.number(_CURRENT), parts.number(_TIME, {"ms": 0.001})
    if exposure is None and current is not None and seconds is not None:
        exposure = round(current * seconds, 6)  # mAs = mA x s, where no Exposure is reported
    return Exposure(parts.text(_LATERALITY), parts.text(_VIEW), parts.text(_ANODE),
                    parts.text(_FILTER), parts.number(_KVP), parts.number(_THICKNESS), exposure,
                    parts.text(_CONTROL), protocol, age)  # fmt: skip
