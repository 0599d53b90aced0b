"""Dose facts: the flat projection statistics read (one row per irradiation event and one per
study total). Derived data: `server.fhir.facts` builds them from the stored FHIR resources,
so they can always be rebuilt from the store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal


@dataclass(frozen=True)
class DoseFact:
    key: str  # "event:<Study Instance UID>:<Irradiation Event UID>" or "study:<Study Instance UID>"
    level: Literal["event", "study"]
    study_uid: str
    resource: str  # the Observation the row was read from
    modality: str
    patient: str | None = None
    device: str | None = None
    date: float | None = None  # epoch seconds of the event or the study's irradiation start
    protocol: str | None = None
    procedure: str | None = None  # the standard procedure, else the study's own words
    body_region: str | None = None
    acquisition_type: str | None = None
    age_years: float | None = None
    weight_kg: float | None = None
    size_m: float | None = None
    events: int | None = None
    ctdivol_mgy: float | None = None
    dlp_mgy_cm: float | None = None
    ssde_mgy: float | None = None
    dap_gy_m2: float | None = None
    dose_rp_gy: float | None = None
    agd_mgy: float | None = None
    agd_left_mgy: float | None = None
    agd_right_mgy: float | None = None
    fluoro_time_s: float | None = None
    exposure_index: float | None = None
    kvp_kv: float | None = None
    # acquisition parameters, for monitoring their drift (events only)
    tube_current_ma: float | None = None
    exposure_mas: float | None = None  # CT: per rotation; radiography: of the exposure
    pitch_factor: float | None = None
    collimation_mm: float | None = None  # CT nominal total collimation width
    # what the examination is: "procedure" (a standard procedure), "unclassified" (no rule
    # matched: `procedure` holds its own words), "qa" (QA, phantom, physics: no patient);
    # None: stored before Kerma told them apart (`kerma facts rebuild` fills it in)
    category: str | None = None


FACT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DoseFact))
# dose-facts fields as people call them (reports, charts, alert texts)
NAMES = {
    "ctdivol_mgy": "CTDIvol", "dlp_mgy_cm": "DLP", "ssde_mgy": "SSDE", "dap_gy_m2": "DAP",
    "dose_rp_gy": "Ka,r", "agd_mgy": "AGD", "exposure_index": "Exposure index",
    "fluoro_time_s": "Fluoroscopy time", "kvp_kv": "kVp", "tube_current_ma": "Tube current",
    "exposure_mas": "Exposure", "pitch_factor": "Pitch factor", "collimation_mm": "Collimation",
    "weight_kg": "Weight",
}  # fmt: skip
# a dose level's quantity and place in a report -> the field and the row level holding it
LEVEL_FIELDS = {
    ("113830", "event"): ("ctdivol_mgy", "event"),
    ("113838", "event"): ("dlp_mgy_cm", "event"),
    ("122130", "event"): ("dap_gy_m2", "event"),
    ("113813", "examination"): ("dlp_mgy_cm", "study"),
    ("113722", "examination"): ("dap_gy_m2", "study"),
}


def checked_fields(names: Sequence[str]) -> list[str]:
    """Field names checked against DoseFact's (stores put them into queries)."""
    unknown = [n for n in names if n not in FACT_FIELDS]
    if unknown:
        raise ValueError(f"no dose-fact field {', '.join(unknown)}")
    return list(names)


def plausible(fact: DoseFact, bounds: Mapping[str, Sequence[float]]) -> DoseFact:
    """The fact without the values no examination can have (outside `bounds`, NaN, infinite):
    they would poison every mean, maximum and median they enter.

    >>> plausible(DoseFact("k", "event", "1", "r", "CT", ctdivol_mgy=-0.001, dlp_mgy_cm=12.0),
    ...           {"ctdivol_mgy": [0, 1000], "dlp_mgy_cm": [0, 50000]}).ctdivol_mgy is None
    True
    """
    implausible: dict[str, Any] = {
        name: None
        for name, bound in bounds.items()
        if (value := getattr(fact, name)) is not None and not within(value, bound)
    }
    return replace(fact, **implausible) if implausible else fact


def within(value: float, bound: Sequence[float]) -> bool:
    """Whether a value is finite and within [low, high]."""
    low, high = bound
    return math.isfinite(value) and low <= value <= high
