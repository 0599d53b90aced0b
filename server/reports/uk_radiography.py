"""The UK radiography dose survey (UKHSA, formerly PHE): one CSV line per radiography (DX, CR)
examination in the layout of the 2019 survey's data collection spreadsheet, its projections
side by side, DAP in cGy·cm² (mappings/exports/uk_radiography.yaml names the columns and their
source). Pseudonymised as every export: the examination as a keyed pseudonym, the date at the
site's precision, age in whole years; the protocol as Kerma's standard procedure, not the
examination's own words. QA and phantom examinations are left out."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.dose.ages import calendar_age
from server.dose.facts import DoseFact
from server.exports.rows import Export
from server.fhir.pseudonymise import pseudonym
from server.fhir.service import body_of
from server.mappings import read_yaml
from server.reports.components import Components
from server.stats.service import NOT_CLASSIFIED

_STUDY = ["study_uid", "modality", "category", "date", "procedure", "patient", "age_years",
          "weight_kg", "size_m", "dap_gy_m2"]  # fmt: skip
_CGY_CM2 = 1e6  # per Gy·m²
_GRID, _SDD, _FILTER, _FILTER_MM = "111635", "113750", "113757", "113758"
_VIEW, _CONTROL = "111031", "ExposureControlMode"
_ORIENTATION = ("113743", "113744", "113745")  # patient orientation, its modifier, to the table
_SEX = {"male": "M", "female": "F", "other": "O", "unknown": ""}


@dataclass(frozen=True)
class Layout:
    """mappings/exports/uk_radiography.yaml, read."""

    dap_unit: str
    projections: tuple[int, int]  # the usual sheet's projection columns, the skeletal one's
    head: tuple[str, ...]
    per_projection: tuple[str, ...]
    tail: tuple[str, ...]

    def columns(self, projections: int) -> list[str]:
        daps = [f"Projection {n} DAP" for n in range(1, projections + 1)]
        each = [[f"Projection {n} Name", *self.per_projection] for n in range(1, projections + 1)]
        return [*self.head, *daps, *(c for columns in each for c in columns), *self.tail]


@functools.cache
def uk_radiography_layout() -> Layout:
    table = read_yaml("exports/uk_radiography.yaml")
    usual, skeletal = table["projections"]
    return Layout(table["dap_unit"], (int(usual), int(skeletal)), tuple(table["head"]),
                  tuple(table["per_projection"]), tuple(table["tail"]))  # fmt: skip


def csv_text(export: Export, since: float, until: float) -> str:
    """The radiography examinations of [since, until) as the survey's CSV."""
    layout = uk_radiography_layout()
    examinations = list(_examinations(export, since, until))
    most = max((len(events) for _, events in examinations), default=0)
    width = layout.projections[0] if most <= layout.projections[0] else layout.projections[1]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(layout.columns(width))
    for number, (study, events) in enumerate(examinations, 1):
        writer.writerow(_line(export, layout, number, study, events[:width], width))
    return out.getvalue()


def _examinations(
    export: Export, since: float, until: float
) -> Iterator[tuple[dict[str, Any], list[tuple[DoseFact, Components]]]]:
    """Each radiography examination of patients (its study row) with its projections in order."""
    for values in export.store.fact_rows("study", _STUDY, since, until):
        study = dict(zip(_STUDY, values, strict=True))
        if study["modality"] not in ("DX", "CR") or study["category"] == "qa":
            continue
        events = sorted((f for f in export.store.facts(study["study_uid"]) if f.level == "event"),
                        key=lambda f: f.date or 0.0)  # fmt: skip
        yield study, [(f, Components.read(export.store, f.resource)) for f in events]


def _line(
    export: Export,
    layout: Layout,
    number: int,
    study: dict[str, Any],
    events: list[tuple[DoseFact, Components]],
    width: int,
) -> list[Any]:
    when = datetime.fromtimestamp(study["date"], export.timezone)
    procedure = study["procedure"] if study["category"] == "procedure" else NOT_CLASSIFIED
    age = None if study["age_years"] is None else calendar_age(study["age_years"], when.date())
    head = ["", number, pseudonym(export.key, study["study_uid"]), export.date_text(when),
            _cgy_cm2(study["dap_gy_m2"]), layout.dap_unit, procedure, study["weight_kg"], "", "",
            age, _sex(export, study["patient"]), study["size_m"], len(events)]  # fmt: skip
    daps = [_cgy_cm2(fact.dap_gy_m2) for fact, _ in events] + [""] * (width - len(events))
    projections: list[Any] = []
    for fact, parts in events:
        name = fact.protocol if export.descriptions else ""  # PS3.15: the device's own words
        projections += [name or "", *_projection(fact, parts)]
    projections += [""] * ((width - len(events)) * (1 + len(layout.per_projection)))
    return [*head, *daps, *projections, *[""] * len(layout.tail)]


def _projection(fact: DoseFact, parts: Components) -> list[Any]:
    """Detector, grid, focus-detector distance (cm), filtration, AEC, kVp, mAs, patient
    position, detector in bucky, other (exposure index, view)."""
    sdd_mm, thickness_mm = parts.number(_SDD), parts.number(_FILTER_MM)
    materials = ", ".join(dict.fromkeys(parts.texts(_FILTER)))
    filters = f"{materials} {thickness_mm:g} mm" if materials and thickness_mm else materials
    position = ", ".join(p for p in map(parts.text, _ORIENTATION) if p)
    other = " ".join(p for p in (f"EI: {fact.exposure_index:.2f}" if fact.exposure_index is not None
                                 else "", parts.text(_VIEW)) if p)  # fmt: skip
    return ["", parts.text(_GRID), None if sdd_mm is None else round(sdd_mm / 10, 3), filters,
            parts.text(_CONTROL), fact.kvp_kv, fact.exposure_mas, position, "", other]  # fmt: skip


def _sex(export: Export, patient: str | None) -> str:
    stored = export.store.read(*patient.split("/", 1)) if patient else None
    gender = body_of(stored).get("gender", "unknown") if stored is not None else "unknown"
    return _SEX.get(str(gender), "")


def _cgy_cm2(dap_gy_m2: float | None) -> float | None:
    return None if dap_gy_m2 is None else round(dap_gy_m2 * _CGY_CM2, 6)
