"""Alert rules beyond DRLs: fixed thresholds and multiples of the DRL that a country's rules
call significant events (e.g. Germany's StrlSchV Anlage 14). The rule sets are data
(mappings/alerts/*.yaml); this evaluates them. Pure."""

from __future__ import annotations

from collections.abc import Callable
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
    unit: str = ""  # the unit the rule is written in (UCUM): its texts give values in it
    drl_factor: float | None = None
    # group criterion: the last `group_size` examinations of a type on a device average more
    # than `mean_factor` x DRL while one of them is above `drl_factor` x DRL
    group_size: int = 0
    mean_factor: float | None = None
    # what the DetectedIssue calls it: a reportable significant event unless the set says
    # otherwise (e.g. a patient follow-up level)
    issue: tuple[str, str] = ("significant-event", "Significant event")


@dataclass(frozen=True)
class Alert:
    rule: AlertRule
    value: Value
    limit: float  # what the value is above, canonical unit
    level: DoseLevel | None = None  # the DRL, for rules by DRL multiple


def rules_from_table(table: dict[str, Any], units: UnitTable) -> list[AlertRule]:
    found = []
    kind = table.get("issue", {})
    issue = (kind["code"], kind["display"]) if kind else AlertRule.issue
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
                unit=str(spec.get("unit", "")),
                drl_factor=spec.get("drl_factor"),
                group_size=int(spec.get("group", {}).get("size", 0)),
                mean_factor=spec.get("group", {}).get("mean_factor"),
                issue=issue,
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
        if (
            rule.group_size
            or modality not in rule.modalities
            or (rule.region and rule.region != region)
        ):
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


# DICOM code of an examination-level quantity -> the study row's field in the dose facts
GROUP_QUANTITIES = {"113813": "dlp_mgy_cm", "113722": "dap_gy_m2"}


def group_alerts(
    rules: list[AlertRule], modality: str, drls: list[DoseLevel], recent: Callable[[int], list[Any]]
) -> list[Alert]:
    """Group criteria over the newest studies of this type on this device (`recent(n)`: their
    dose-facts rows, newest first). The alert's value is the group's mean; it is raised once
    per study whose value started it (the newest one above the single-value factor)."""
    alerts = []
    for rule in rules:
        if not rule.group_size or modality not in rule.modalities or rule.mean_factor is None:
            continue
        grouped = [
            lv for lv in drls if lv.quantity_code in GROUP_QUANTITIES and lv.per == "examination"
        ]
        window = recent(rule.group_size) if grouped else []  # one read of the window per rule
        for level in grouped:
            field = GROUP_QUANTITIES[level.quantity_code]
            rows = [r for r in window if getattr(r, field) is not None]
            if len(rows) < rule.group_size:
                continue
            mean = sum(getattr(r, field) for r in rows) / len(rows)
            high = [r for r in rows if getattr(r, field) > (rule.drl_factor or 0) * level.value]
            if high and mean > rule.mean_factor * level.value:
                value = Value(
                    level.quantity_code, "examination", mean, f"group:{high[0].study_uid}"
                )
                alerts.append(Alert(rule, value, rule.mean_factor * level.value, level))
    return alerts
