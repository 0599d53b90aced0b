"""The check stage of ingest: the report's values against the site's dose levels (per
acquisition: the acquisition's procedure; per examination: the study's) and its alert rules,
as the DetectedIssues they raise. It writes nothing; the write stage stores those not raised
before."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.alerts import issues
from server.dose import alerts, drl
from server.dose.model import DoseReport
from server.fhir import acquisitions, mapping
from server.mappings import plausibility_bounds
from server.store.port import Store


@dataclass(frozen=True)
class LevelChecks:
    report: DoseReport
    ctx: mapping.Context
    store: Store  # the dose facts of recent studies, for rules over a group of examinations

    def found(
        self,
        study: dict[str, Any],
        summary: dict[str, Any],
        refs: issues.Refs,
        events: list[dict[str, Any]],
        calculated: list[drl.Value],
    ) -> list[dict[str, Any]]:
        """DetectedIssues for values above a level that applies and for what the alert rules
        call significant events; none for physics and QA studies, nor for values still waiting
        for review, nor where the site compares with nothing."""
        if not self.ctx.levels and not self.ctx.alert_rules:
            return []
        decision = mapping.classification_of(study, self.ctx)
        if decision.rule == "qa" or summary.get("status") == "preliminary":
            return []
        by_uid = {_event_uid(e): e for e in events}
        grouped = self._by_procedure(decision.code, by_uid)
        grouped.setdefault(decision.code, []).extend(calculated)
        found = self._group_issues(decision.code, refs)
        for code, values in grouped.items():
            found += self._value_issues(code or decision.code, code, values, refs, by_uid)
        return found

    def _group_issues(self, code: str, refs: issues.Refs) -> list[dict[str, Any]]:
        """Rules over the study and its device's recent studies of the same procedure."""
        uid, when = self.report.study.study_uid, self._when()
        found = alerts.group_alerts(list(self.ctx.alert_rules), refs.modality,
                                    self._levels(code, "DRL"), self._recent(uid))  # fmt: skip
        return [issues.significant_event(a, uid, refs, when, self.ctx) for a in found]

    def _value_issues(
        self,
        procedure_code: str,
        code: str,
        values: list[drl.Value],
        refs: issues.Refs,
        by_uid: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The values of one procedure against its DRLs, alert levels and the rules."""
        uid, when = self.report.study.study_uid, self._when()

        def located(value: drl.Value) -> issues.Refs:
            event = by_uid.get(value.event_uid or "")
            return refs.at(f"Observation/{event['id']}" if event else refs.holder)

        levels = self._levels(code, "DRL")
        procedure = self.ctx.rules.procedure(procedure_code)
        region = "head" if procedure and procedure.region == "HEAD" else "body"
        exceeded = drl.exceedances(levels + self._levels(code, "alert"), values)
        rules = alerts.evaluate(list(self.ctx.alert_rules), refs.modality, region, values, levels)
        return [
            issues.level_exceeded(x, uid, located(x.value), when, self.ctx) for x in exceeded
        ] + [issues.significant_event(a, uid, located(a.value), when, self.ctx) for a in rules]

    def _when(self) -> datetime:
        report = self.report
        return report.irradiation_start or report.study.started or datetime.now(UTC)

    def _by_procedure(
        self, study_code: str, events: dict[str, dict[str, Any]]
    ) -> dict[str, list[drl.Value]]:
        """The report's values by the standard procedure they are compared for: an event's
        own (per-acquisition classification), else the study's; "" for values of no
        procedure (localizers, bolus tracking: fixed alert thresholds only)."""
        grouped: dict[str, list[drl.Value]] = defaultdict(list)
        for value in drl.plausible_values(
            drl.report_values(self.report), plausibility_bounds()["facts"]
        ):
            event = events.get(value.event_uid or "")
            classified, coding = acquisitions.event_procedure(event) if event else (False, None)
            code = str((coding or {}).get("code", "")) if classified else study_code
            grouped[code].append(value)
        return grouped

    def _levels(self, code: str, kind: str) -> list[drl.DoseLevel]:
        """The levels of a kind that apply to this report's patient for a procedure."""
        patient = self.report.patient
        return self.ctx.applicable_levels(code, patient.age_years, patient.weight_kg, kind)

    def _recent(self, study_uid: str) -> Callable[[int], list[Any]]:
        """The newest studies of this one's device and procedure up to it (dose-facts rows);
        read only when a group rule asks."""
        store = self.store

        def recent(limit: int) -> list[Any]:
            row = next((f for f in store.facts(study_uid) if f.level == "study"), None)
            if row is None or not row.device or not row.procedure or row.date is None:
                return []
            return store.recent_studies(row.device, row.procedure, row.date, limit)

        return recent


def _event_uid(event: dict[str, Any]) -> str:
    return str(event["identifier"][0]["value"]).removeprefix("urn:oid:")
