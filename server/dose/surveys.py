"""The rules of a national DRL survey as an authority defines it (mappings/surveys/*.yaml):
which examinations it asks for (those of its DRL sets), which patients count, how many a room
needs, and the unit each quantity is written in.

Pure: a table in, typed rules out; the population test works on arrays of ages and weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

_KEEP = {"keep": True, "leave out": False}


@dataclass(frozen=True)
class Population:
    """The patients a survey counts: an age and a weight band (bounds inclusive), and whether
    examinations without a recorded age or weight count."""

    age_min_years: float | None = None
    age_max_years: float | None = None
    weight_min_kg: float | None = None
    weight_max_kg: float | None = None
    without_age: bool = True
    without_weight: bool = True
    source: str = ""

    def admits(
        self, ages: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        """Which rows (age, weight; NaN: not recorded) the survey counts.

        >>> p = Population(16, None, 50, 90, without_age=False, without_weight=True)
        >>> p.admits(np.array([40, 15, np.nan, 40, 40]), np.array([70, 70, 70, np.nan, 95])).tolist()
        [True, False, False, True, False]
        """
        return _within(ages, self.age_min_years, self.age_max_years, self.without_age) & _within(
            weights, self.weight_min_kg, self.weight_max_kg, self.without_weight
        )

    @property
    def text(self) -> str:
        """The band as a reader of the survey is told it."""
        parts = [_band("age", self.age_min_years, self.age_max_years, "years"),
                 _band("weight", self.weight_min_kg, self.weight_max_kg, "kg")]  # fmt: skip
        unknown = [name for name, kept in (("age", self.without_age),
                                           ("weight", self.without_weight)) if not kept]  # fmt: skip
        told = "; ".join(p for p in parts if p) or "every patient"
        return told + (f"; examinations without a recorded {' or '.join(unknown)} left out"
                       if unknown else "")  # fmt: skip


@dataclass(frozen=True)
class Section:
    """One table of the survey: a quantity of some modalities, in the authority's unit."""

    modalities: tuple[str, ...]
    quantity: str  # the dose-fact field, e.g. dlp_mgy_cm
    level: str  # "study" (per examination) or "event" (per irradiation event)
    unit: str  # UCUM code the survey writes the quantity in, e.g. cGy.cm2
    title: str
    source: str

    @property
    def shown_unit(self) -> str:
        """The unit as people write it (cGy.cm2: cGy·cm²)."""
        text = self.unit.replace(".", "·").replace("2", "²")
        return "µ" + text[1:] if text.startswith("u") else text


@dataclass(frozen=True)
class SurveyRules:
    name: str  # the file name without .yaml (KERMA_SURVEY)
    title: str
    authority: str
    country: str
    drl_sets: tuple[str, ...]  # their examinations are the survey's
    drl_sets_source: str
    population: Population
    min_patients: int  # per room and examination; fewer: the row is left out, with the reason
    statistic: str  # per room
    per_room_source: str
    sections: tuple[Section, ...]

    @classmethod
    def of(cls, name: str, table: dict[str, Any]) -> SurveyRules:
        people, room = table["population"], table["per_room"]
        if room["statistic"] != "median":
            raise ValueError(f"survey {name}: per-room statistic must be median")
        bands = ("age_min_years", "age_max_years", "weight_min_kg", "weight_max_kg")
        population = Population(
            **{k: _number(people.get(k)) for k in bands},
            without_age=_KEEP[people.get("without_age", "keep")],
            without_weight=_KEEP[people.get("without_weight", "keep")],
            source=_text(people["source"]),
        )
        sections = tuple(
            Section(tuple(s["modality"]), s["quantity"], s["level"], s["unit"], s["title"],
                    _text(s["source"]))
            for s in table["sections"]
        )  # fmt: skip
        return cls(name, table["title"], table["authority"], table["country"],
                   tuple(table["drl_sets"]), _text(table["drl_sets_source"]), population,
                   int(room["min_patients"]), room["statistic"], _text(room["source"]), sections)  # fmt: skip


def _within(
    values: npt.NDArray[np.float64], low: float | None, high: float | None, unknown: bool
) -> npt.NDArray[np.bool_]:
    known = ~np.isnan(values)
    inside = known.copy()
    if low is not None:
        inside &= np.greater_equal(values, low, where=known, out=np.zeros_like(known))
    if high is not None:
        inside &= np.less_equal(values, high, where=known, out=np.zeros_like(known))
    return inside | (~known & unknown)


def _band(name: str, low: float | None, high: float | None, unit: str) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f"{name} {low:g} {unit} or more"
    if low is None:
        return f"{name} up to {high:g} {unit}"
    return f"{name} {low:g}-{high:g} {unit}"


def _text(value: Any) -> str:
    """A source as one line (YAML folds it over several)."""
    return " ".join(str(value).split())


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
