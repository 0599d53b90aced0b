"""Loaders for the data tables in `mappings/` (installed as the package `kerma_mappings`)."""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from server.dose.alerts import AlertRule, rules_from_table
from server.dose.classify import Rules
from server.dose.drl import DoseLevel, levels_from_rows
from server.dose.effective import KFactors
from server.dose.monitoring import Table
from server.dose.results import ResultItem, items_from_rows
from server.dose.skin import Factors as SkinDoseFactors
from server.dose.ssde import SsdeTables
from server.dose.statistics import StatisticsTables
from server.dose.surveys import SurveyRules
from server.dose.units import Unit, UnitTable


def read_text(name: str) -> str:
    """A file of the mappings package by its relative path, e.g. 'fhir/search_parameters.yaml'."""
    return resources.files("kerma_mappings").joinpath(name).read_text(encoding="utf-8")


def read_yaml(name: str) -> Any:
    return parse_yaml(read_text(name))


# libyaml's parser where PyYAML was built with it (Debian's and the wheels are): the tables,
# the OpenAPI document and the rules libraries load 5-10x faster than with the pure-Python one
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """YAML as `yaml.safe_load` reads it (plain data only, no Python objects)."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def read_csv_rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(name))))


@functools.cache
def unit_table() -> UnitTable:
    rows = csv.DictReader(io.StringIO(read_text("units.csv")))
    aliases = csv.DictReader(io.StringIO(read_text("unit_aliases.csv")))
    return UnitTable(
        (
            Unit(
                r["ucum_code"], r["quantity"], float(r["factor_to_canonical"]), r["canonical_code"]
            )
            for r in rows
        ),
        {a["written"]: a["ucum_code"] for a in aliases},
    )


@functools.cache
def plausibility_bounds() -> dict[str, Any]:
    return read_yaml("dose/plausibility.yaml")  # type: ignore[no-any-return]


@functools.cache
def classification_rules() -> Rules:
    return Rules(
        read_yaml("classification/rules.yaml"), read_csv_rows("classification/procedures.csv")
    )


@functools.cache
def k_factors() -> KFactors:
    return KFactors.of(read_csv_rows("dose/k_factors.csv"))


@functools.cache
def k_factor_regions() -> dict[str, str]:
    """Standard procedure code -> the region of its CT effective-dose k-factor."""
    return {r["code"]: r["region"] for r in read_csv_rows("dose/k_factor_regions.csv")}


@functools.cache
def skin_dose_factors() -> SkinDoseFactors:
    return SkinDoseFactors.of(read_yaml("dose/skin_dose.yaml"))


@functools.cache
def ssde_tables() -> SsdeTables:
    return SsdeTables.of(read_yaml("dose/ssde.yaml"))


@functools.cache
def statistics_tables() -> StatisticsTables:
    return StatisticsTables.of(read_yaml("statistics.yaml"))


@functools.cache
def monitoring_table() -> Table:
    return Table.of(read_yaml("monitoring.yaml"))


@functools.cache
def national_levels() -> tuple[DoseLevel, ...]:
    return tuple(levels_from_rows(read_csv_rows("drl/national.csv"), unit_table()))


def yaml_names(folder: str) -> list[str]:
    """The tables of a folder of mappings/ (alerts, surveys): file names without .yaml."""
    found = resources.files("kerma_mappings").joinpath(folder)
    return sorted(f.name.removesuffix(".yaml") for f in found.iterdir() if f.name.endswith(".yaml"))


def alert_rule_sets() -> list[str]:
    """The names of the alert rule sets of mappings/alerts/."""
    return yaml_names("alerts")


@functools.cache
def alert_rules(name: str) -> tuple[AlertRule, ...]:
    """A rule set of mappings/alerts/ by its file name without .yaml."""
    try:
        table = read_yaml(f"alerts/{name}.yaml")
    except FileNotFoundError:
        raise ValueError(f"no alert rule set {name!r} in mappings/alerts") from None
    return tuple(rules_from_table(table, unit_table()))


@functools.cache
def survey_rules(name: str) -> SurveyRules:
    """A national survey of mappings/surveys/ by its file name without .yaml."""
    if name not in yaml_names("surveys"):
        raise ValueError(f"no survey {name!r} in mappings/surveys")
    return SurveyRules.of(name, read_yaml(f"surveys/{name}.yaml"))


@dataclass(frozen=True)
class Concept:
    """A DICOM concept Kerma reads and writes (mappings/dicom/concepts.csv): the dose model
    field it fills, its value type, code, meaning and UCUM unit, where the reader finds it,
    and where it goes in FHIR."""

    template: str  # the group of fields it belongs to: ct_event, projection_event, ...
    field: str
    type: str  # NUM, COUNT (a whole number), CODE, CODE_OR_TEXT, TEXT, DATETIME
    scheme: str  # DCM, SCT; ATTR: an image attribute by its keyword (no SR concept)
    code: str
    meaning: str
    unit: str  # UCUM, as the field holds it
    where: tuple[str, ...]  # the containers the reader looks in, first match wins
    fhir: str  # component, or the element it fills (bodySite...); "-": read, not mapped
    # a NUM given once per pulse: how its values make the field's one value (sum, mean,
    # mean/<field of the weights>, server/dose/pulses.py); empty: the first item counts
    several: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.scheme, self.code)


@functools.cache
def code_aliases() -> dict[tuple[str, str], tuple[str, str]]:
    """Codes vendors write for a neighbouring or private copy of a standard concept
    (mappings/dicom/code_aliases.csv): (scheme, written) -> (scheme, code) of the standard."""
    return {
        (r["scheme"], r["written"]): (r["standard_scheme"], r["standard"])
        for r in read_csv_rows("dicom/code_aliases.csv")
    }


@functools.cache
def concepts(template: str) -> tuple[Concept, ...]:
    """The concepts of a template, in the order FHIR gives their components."""
    rows = [r for r in read_csv_rows("dicom/concepts.csv") if r["template"] == template]
    found = tuple(Concept(**{**r, "where": tuple(r["where"].split())}) for r in rows)  # type: ignore[arg-type]
    if not found:
        raise KeyError(f"no concepts of template {template!r} in mappings/dicom/concepts.csv")
    return found


@functools.cache
def dose_result_items() -> tuple[ResultItem, ...]:
    """What the dose results sent to the RIS hold (mappings/hl7/dose_results.csv)."""
    return items_from_rows(read_csv_rows("hl7/dose_results.csv"))
