"""A national DRL survey as its authority defines it (KERMA_SURVEY; the rules, each with its
source, in mappings/surveys/): per examination of the authority's DRL list and per room, n,
median and mean over the patients the survey counts, compared with the national DRL. Rooms
with too few patients, patients outside the survey's population and examinations the
authority does not ask for are left out, each counted with its reason."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from server.dose.drl import DoseLevel
from server.dose.facts import LEVEL_FIELDS
from server.dose.surveys import Section, SurveyRules
from server.mappings import national_levels
from server.stats.measures import ucum
from server.stats.service import LevelComparison, Query, Row, Statistics


@dataclass(frozen=True)
class Table:
    """One section of the survey: its rows in the canonical unit (the Bundle's), and what it
    leaves out."""

    section: Section
    query: Query  # the section's examinations and population, grouped by examination and room
    rows: list[Row]
    too_few: list[Row]  # rooms with fewer examinations than the survey's minimum
    examinations: dict[tuple[str | None, str | None], int]  # per (examination, device) row
    outside: int  # values of the section's examinations from patients outside the population
    others: list[tuple[str, int]]  # standard procedures the authority does not ask for
    factor: float  # from the canonical unit to the section's

    def scaled(self, value: float) -> float:
        return value * self.factor

    def examinations_of(self, row: Row) -> int:
        """The examinations (patients) a row's values come from: its n per examination, fewer
        than n per irradiation event."""
        return self.examinations[(row.group["examination"], row.group["device"])]


def tables(stats: Statistics, rules: SurveyRules, start: datetime, end: datetime) -> list[Table]:
    """Every section of the survey over [start, end)."""
    levels = [lv for lv in national_levels() if lv.set in rules.drl_sets and lv.kind == "DRL"
              and lv.current and lv.population == "adult"]  # fmt: skip
    return [_table(stats, rules, section, levels, start, end) for section in rules.sections]


def _table(
    stats: Statistics,
    rules: SurveyRules,
    section: Section,
    levels: list[DoseLevel],
    start: datetime,
    end: datetime,
) -> Table:
    asked = [lv for lv in levels if lv.modality in section.modalities
             and LEVEL_FIELDS.get((lv.quantity_code, lv.per)) == (section.quantity, section.level)]  # fmt: skip
    base = Query(section.quantity, section.level, ("device",), start.timestamp(), end.timestamp(),
                 population=rules.population)  # fmt: skip
    rows: list[Row] = []
    too_few: list[Row] = []
    examinations: dict[tuple[str | None, str | None], int] = {}
    outside, named = 0, set[str]()
    for level in asked:
        names = _procedures(stats, level)
        named.update(names)
        if not names:
            continue
        query = replace(base, procedures=names)
        counted = stats.dose(query)
        everyone = stats.load(replace(query, population=None))
        outside += sum(n for _, n in everyone) - sum(r.summary.n for r in counted)
        per_device = stats.examinations_per_device(query)
        for row in counted:
            made = _row(row, level)
            key = (made.group["examination"], made.group["device"])
            examinations[key] = per_device[str(row.group["device"])]
            (rows if examinations[key] >= rules.min_patients else too_few).append(made)
    return Table(
        section,
        replace(base, group_by=("examination", "device"), procedures=tuple(sorted(named))),
        rows,
        too_few,
        examinations,
        outside,
        _others(stats, section, base, named),
        stats.ctx.units.convert(1.0, ucum(section.quantity), section.unit),
    )


def _procedures(stats: Statistics, level: DoseLevel) -> tuple[str, ...]:
    """The names of the standard procedures a national level applies to."""
    codes = level.procedures or stats.ctx.level_procedures.get(
        (level.set, level.examination), frozenset()
    )
    found = (stats.ctx.rules.procedure(code) for code in sorted(codes))
    return tuple(p.name for p in found if p is not None)


def _row(row: Row, level: DoseLevel) -> Row:
    """A room's row under the authority's name of the examination, compared with its DRL."""
    examination = level.examination + (
        f" ({level.clinical_indication})" if level.clinical_indication else ""
    )
    group = {"examination": examination, "device": row.group.get("device"),
             "device_name": row.group.get("device_name")}  # fmt: skip
    compared = LevelComparison(
        level.set, examination, level.value, row.summary.median / level.value
    )
    return Row(group, row.summary, (compared,))


def _others(
    stats: Statistics, section: Section, base: Query, named: set[str]
) -> list[tuple[str, int]]:
    """The standard procedures of the section's modalities the survey does not ask for, with
    how many values each has (patients outside the population included)."""
    found: dict[str, int] = {}
    for modality in section.modalities:
        query = replace(base, modality=modality, population=None, group_by=("procedure",))
        for group, n in stats.load(query):
            name = group["procedure"] or "(no standard procedure)"
            if name not in named:
                found[name] = found.get(name, 0) + n
    return sorted(found.items(), key=lambda pair: (-pair[1], pair[0]))
