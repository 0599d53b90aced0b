"""Alert rules beyond DRLs: fixed thresholds and multiples of the DRL that a country's rules
call significant events (e.g. Germany's StrlSchV Anlage 14). The rule sets are data
(mappings/alerts/*.yaml); this evaluates them. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.dose.drl import DoseLevel, Value
from server.dose.units import UnitTable


@dataclass(frozen=True)
class AlertRule:
    set: str
    id: str
    modalities: frozenset[str]
    text: str
    region: str = ""  # "head", "body" or "" (either)
    quantity_code: str = ""
    per: str = ""
    above: float | None = None  # canonical unit of the quantity
    drl_factor: float | None = None


@dataclass(frozen=True)
class Alert:
    rule: AlertRule
    value: Value
    limit: float  # what the value is above, canonical unit
    level: DoseLevel | None = None  # the DRL, for rules by DRL multiple


def rules_from_table(table: dict[str, Any], units: UnitTable) -> list[AlertRule]:
    found = []
    for spec in table["rules"]:
        above = None
        if "above" in spec:
            above, _ = units.canonical(float(spec["above"]), spec["unit"])
        found.append(
            AlertRule(
                set=table["name"],
                id=spec["id"],
                modalities=frozenset(spec["modality"]),
                text=spec["text"],
                region=spec.get("region", ""),
                quantity_code=str(spec.get("quantity", "")),
                per=spec.get("per", ""),
                above=above,
                drl_factor=spec.get("drl_factor"),
            )
        )
    return found


def evaluate(
    rules: list[AlertRule],
    modality: str,
    region: str,
    values: list[Value],
    drls: list[DoseLevel],
) -> list[Alert]:
    """Every value a rule calls a significant event. `region`: "head" or "body"."""
    alerts = []
    for rule in rules:
        if modality not in rule.modalities or (rule.region and rule.region != region):
            continue
        if rule.above is not None:
            alerts += [
                Alert(rule, v, rule.above)
                for v in values
                if v.quantity_code == rule.quantity_code
                and v.per == rule.per
                and v.value > rule.above
            ]
        if rule.drl_factor is not None:
            alerts += [
                Alert(rule, v, lv.value * rule.drl_factor, lv)
                for lv in drls
                for v in values
                if v.quantity_code == lv.quantity_code
                and v.per == lv.per
                and v.value > lv.value * rule.drl_factor
            ]
    return alerts
