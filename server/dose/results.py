"""A study's dose as a result for the RIS: coded values (one per study quantity, one per
acquisition for per-acquisition ones) and one sentence the radiologist's report can take as
it is ("CT abdomen: 3 acquisitions, DLP 724.5 mGy·cm, CTDIvol max 9.9 mGy").

Which quantities, their codes, the unit each is sent in and its words are the table
mappings/hl7/dose_results.csv (a site that reports DAP in cGy·cm² changes the unit there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from server.dose.facts import DoseFact

# UCUM as a person reads it
_READABLE = {"mGy.cm": "mGy·cm", "Gy.cm2": "Gy·cm²", "cGy.cm2": "cGy·cm²", "Gy.m2": "Gy·m²",
             "mGy.cm2": "mGy·cm²", "uGy.m2": "µGy·m²"}  # fmt: skip


@dataclass(frozen=True)
class ResultItem:
    """One row of the table: a fact field sent as a coded value."""

    field: str  # a DoseFact field, in the unit its name says
    level: str  # "study" or "event"
    code: str
    system: str  # "DCM", "LN"
    display: str
    unit: str  # UCUM, the unit it is sent in
    factor: float  # fact value x factor = value in `unit`
    decimals: int
    words: str  # how the sentence names it


@dataclass(frozen=True)
class ResultValue:
    item: ResultItem
    value: float  # in item.unit, rounded to item.decimals
    sub_id: str  # "" for the study, the acquisition's number for an event


@dataclass(frozen=True)
class DoseResult:
    values: tuple[ResultValue, ...]
    text: str


def items_from_rows(rows: Sequence[Mapping[str, str]]) -> tuple[ResultItem, ...]:
    return tuple(
        ResultItem(r["field"], r["level"], r["code"], r["system"], r["display"], r["unit"],
                   float(r["factor"]), int(r["decimals"]), r["words"])
        for r in rows
    )  # fmt: skip


def dose_result(
    study: DoseFact, events: Sequence[DoseFact], items: Sequence[ResultItem]
) -> DoseResult:
    """The coded values and the sentence of one study (its study row and event rows)."""
    ordered = sorted(events, key=lambda e: (e.date is None, e.date or 0.0, e.key))
    values: list[ResultValue] = []
    words: list[str] = []
    for item in items:
        rows = [("", study)] if item.level == "study" else [
            (str(n), e) for n, e in enumerate(ordered, 1)
        ]  # fmt: skip
        found = [
            ResultValue(item, round(v * item.factor, item.decimals), sub_id)
            for sub_id, row in rows
            if (v := getattr(row, item.field)) is not None
        ]
        values.extend(found)
        if found:
            shown = max(found, key=lambda f: f.value).value  # the study's one, or the highest
            words.append(f"{item.words} {shown:.{item.decimals}f} {readable(item.unit)}")
    count = study.events if study.events is not None else len(events)
    kind = "acquisitions" if study.modality == "CT" else "irradiation events"
    head = f"{study.procedure or study.modality}: {count} {kind if count != 1 else kind[:-1]}"
    return DoseResult(tuple(values), ", ".join([head, *words]))


def readable(ucum: str) -> str:
    return _READABLE.get(ucum, ucum)
