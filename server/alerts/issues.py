"""DetectedIssues: what the checks found wrong with a dose report, for people to review."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from server.dose.alerts import Alert
from server.dose.cumulative import QUANTITIES
from server.dose.drl import Exceedance, Value
from server.dose.facts import NAMES
from server.dose.monitoring import Drift, MedianAbove, Repeated
from server.fhir.mapping import Context, fhir_datetime
from server.mappings import unit_table
from server.site.levels import LEVEL_ID_SYSTEM

ISSUE_SYSTEM = "https://kerma.example.org/fhir/CodeSystem/dose-issue"
ISSUE_ID_SYSTEM = "urn:kerma:detected-issue"
COMMENT_URL = "https://kerma.example.org/fhir/StructureDefinition/comment"
_UNITS = {"mGy": "mGy", "mGy.cm": "mGy·cm", "Gy.m2": "Gy·m²"}
MODALITY_TAG = "https://kerma.example.org/fhir/CodeSystem/modality"
DEPARTMENT_TAG = "https://kerma.example.org/fhir/CodeSystem/department"


@dataclass(frozen=True)
class Refs:
    """Where an issue was found: what it implicates, and the tags notifications route by."""

    patient: str | None
    study: str
    holder: str  # the Observation holding the value
    device: str | None = None
    modality: str = ""
    department: str = ""
    device_name: str = ""

    def at(self, holder: str) -> Refs:
        return replace(self, holder=holder)


_LEVEL_ISSUES = {  # level kind -> issue code, display, severity, what the level is called
    "DRL": ("drl-exceeded", "Diagnostic reference level exceeded", "moderate", "DRL"),
    "alert": ("alert-level-exceeded", "Alert level exceeded", "high", "alert level"),
}


def level_exceeded(
    found: Exceedance, study_uid: str, refs: Refs, when: datetime, ctx: Context
) -> dict[str, Any]:
    """A value above a DRL (moderate) or above an alert level the site set (high)."""
    level, value = found.level, found.value
    code, display, severity, called = _LEVEL_ISSUES[level.kind]
    unit = _UNITS.get(level.unit, level.unit)
    detail = (
        f"{level.quantity} {value.value:.4g} {unit} of {_where(value)} is {found.ratio:.2f} times "
        f"the {level.set} {called} of {level.value:.4g} {unit} for {level.examination}"
        + (f" ({level.clinical_indication})" if level.clinical_indication else "")
    )
    evidence = {
        "code": [{"text": f"{level.kind} {level.set}"}],
        "detail": [{"identifier": {"system": LEVEL_ID_SYSTEM, "value": level.key}}],
    }
    key = f"{_place(value, study_uid)}/{level.key}"
    return _issue(key, (code, display), severity, detail, evidence, refs, when, ctx)


def significant_event(
    found: Alert, study_uid: str, refs: Refs, when: datetime, ctx: Context
) -> dict[str, Any]:
    """A value a rule set calls a significant event (to be reported to the authority) or, as
    the set says, something else (e.g. a level for patient follow-up)."""
    rule, value = found.rule, found.value
    shown, limit, unit = _in_unit(found)
    detail = (f"{rule.set}: {rule.text}; the value is {shown:.4g} {unit} ({_where(value)}), "
              f"the limit {limit:.4g} {unit}")  # fmt: skip
    evidence: dict[str, Any] = {"code": [{"text": f"{rule.set} {rule.id}"}]}
    if found.level is not None:
        evidence["detail"] = [{"identifier": {"system": LEVEL_ID_SYSTEM, "value": found.level.key}}]
        detail += f", {value.value / found.level.value:.2f} times the {found.level.set} DRL"
    key = f"{_place(value, study_uid)}/{rule.set}/{rule.id}"
    return _issue(key, rule.issue, "high", detail, evidence, refs, when, ctx)


def median_above(
    found: MedianAbove, days: int, until: datetime, refs: Refs, ctx: Context
) -> dict[str, Any]:
    """The median of a device's examinations of one procedure above a DRL over a period:
    raised once per device, procedure, level and calendar month."""
    level = found.level
    unit = _UNITS.get(level.unit, level.unit)
    values = "examinations" if level.per == "examination" else "irradiation events"
    detail = (
        f"The median {level.quantity} of {found.n} {values} of {found.procedure} on "
        f"{refs.device_name or refs.device} in the {days} days until {until.date().isoformat()} "
        f"is {found.median:.4g} {unit}, {found.median / level.value:.2f} times the {level.set} "
        f"DRL of {level.value:.4g} {unit} for {level.examination}"
    )
    evidence = {
        "code": [{"text": f"median above {level.kind} {level.set}"}],
        "detail": [{"identifier": {"system": LEVEL_ID_SYSTEM, "value": level.key}}],
    }
    key = f"median:{refs.device}:{_word(found.procedure)}:{level.key}:{until:%Y-%m}"
    return _issue(key, ("median-above-drl", "Median above the diagnostic reference level"),
                  "moderate", detail, evidence, refs, until, ctx)  # fmt: skip


def parameter_drift(
    found: Drift, since: datetime, until: datetime, refs: Refs, ctx: Context
) -> dict[str, Any]:
    """An acquisition parameter of a protocol that changed between two periods: raised once
    per device, procedure, protocol, parameter and calendar month."""
    t = found.tolerance
    unit = f" {t.unit}" if t.unit else ""
    detail = (
        f"{t.name} of protocol {found.protocol!r}"
        + (f" ({found.procedure})" if found.procedure else "")
        + f" on "
        f"{refs.device_name or refs.device} changed from {found.before:.4g}{unit} (median of "
        f"{found.n_before} events before {since.date().isoformat()}) to {found.after:.4g}{unit} "
        f"(median of {found.n_after} events since, until {until.date().isoformat()}); "
        f"rank-sum test p = {found.p_value:.2g}"
    )
    evidence = {"code": [{"text": f"parameter drift {found.field}"}]}
    key = f"drift:{refs.device}:{_word(found.procedure)}:{_word(found.protocol)}:{found.field}:{until:%Y-%m}"
    return _issue(key, ("parameter-drift", "Acquisition parameter changed"), "moderate",
                  detail, evidence, refs, until, ctx)  # fmt: skip


def repeated_examinations(found: Repeated, until: datetime, ctx: Context) -> dict[str, Any]:
    """A patient with repeated examinations in a short time (H5): raised again only when a
    newer examination joins the window."""
    rule = found.rule
    levels = dict(rule.sums)
    sums = "".join(f"; {NAMES[field]} {total:.4g} {QUANTITIES[field]} (level {levels[field]:.4g} "
                   f"{QUANTITIES[field]})" for field, total in found.sums)  # fmt: skip
    first, last = (fhir_datetime(datetime.fromtimestamp(t, ctx.timezone), ctx)[:10]
                   for t in (found.first, found.last))  # fmt: skip
    detail = (f"{len(found.examinations)} examinations ({', '.join(rule.modalities)}) of this "
              f"patient from {first} to {last}{sums}: {rule.name}")  # fmt: skip
    refs = Refs(found.patient, "", found.examinations[-1], None, rule.modalities[0])
    evidence = {"code": [{"text": rule.name}]}
    key = f"repeated:{found.patient}:{_word(rule.name)}:{found.examinations[-1]}"
    issue = _issue(key, ("repeated-examinations", "Repeated examinations in a short time"),
                   "moderate", detail, evidence, refs, until, ctx)  # fmt: skip
    issue["implicated"] = [{"reference": ref} for ref in found.examinations]
    issue["meta"]["tag"] += [{"system": MODALITY_TAG, "code": m} for m in rule.modalities[1:]]
    return issue


def _word(text: str) -> str:
    """Text in an identifier that searches find again: no commas, bars or spaces."""
    return re.sub(r"[^A-Za-z0-9./:-]+", "-", text).strip("-")


def issue_identifier(issue: dict[str, Any]) -> str:
    """The search value that finds this issue again (the same value is raised once)."""
    return f"{ISSUE_ID_SYSTEM}|{issue['identifier'][0]['value']}"


def _issue(
    key: str,
    code: tuple[str, str],
    severity: str,
    detail: str,
    evidence: dict[str, Any],
    refs: Refs,
    when: datetime,
    ctx: Context,
) -> dict[str, Any]:
    implicated = [ref for ref in (refs.holder, refs.study, refs.device) if ref]
    tags = [
        {"system": system, "code": value}
        for system, value in ((MODALITY_TAG, refs.modality), (DEPARTMENT_TAG, refs.department))
        if value
    ]
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "identifier": [{"system": ISSUE_ID_SYSTEM, "value": key}],
        "status": "preliminary",
        "code": {"coding": [{"system": ISSUE_SYSTEM, "code": code[0], "display": code[1]}]},
        "severity": severity,
        "identifiedDateTime": fhir_datetime(when, ctx),
        "implicated": [{"reference": ref} for ref in implicated],
        "detail": detail,
        "evidence": [evidence],
    }
    if tags:
        issue["meta"] = {"tag": tags}
    if refs.patient:
        issue["patient"] = {"reference": refs.patient}
    return issue


def _in_unit(found: Alert) -> tuple[float, float, str]:
    """The value and the limit it is above, in the unit the rule is written in (the national
    convention: cGy·cm² in Germany), else in the DRL's unit; and that unit as people write it."""
    level = found.level
    unit = found.rule.unit or (level.unit if level is not None else "")
    if not unit:
        return found.value.value, found.limit, ""
    units = unit_table()
    _, canonical = units.canonical(1.0, unit)
    shown = units.convert(found.value.value, canonical, unit)
    limit = units.convert(found.limit, canonical, unit)
    return shown, limit, _UNITS.get(unit, unit.replace(".", "·").replace("2", "²"))


def _where(value: Value) -> str:
    if (value.event_uid or "").startswith("group:"):
        return "the mean of the group"
    return "an irradiation event" if value.event_uid else "the examination"


def _place(value: Value, study_uid: str) -> str:
    return value.event_uid or f"study:{study_uid}"


def acknowledged(issue: dict[str, Any], who: str, comment: str, when: datetime) -> dict[str, Any]:
    """The issue reviewed: status final (off the review list), with who acknowledged it, when,
    and what they said, kept as a mitigation entry (later comments add entries)."""
    entry: dict[str, Any] = {
        "action": {
            "coding": [{"system": ISSUE_SYSTEM, "code": "acknowledged", "display": "Acknowledged"}]
        },
        "date": when.isoformat(timespec="seconds"),
        "author": {"display": who},
    }
    if comment:
        entry["extension"] = [{"url": COMMENT_URL, "valueString": comment}]
    return {**issue, "status": "final", "mitigation": [*issue.get("mitigation", []), entry]}
