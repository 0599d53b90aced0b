"""The monitoring run (daily in `kerma serve`, or `kerma monitor`): medians above DRLs,
parameter drift and patients with repeated examinations become DetectedIssues, queued for notification like those of single reports;
duplicate protocols and differences between devices are Lists for review.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from server.alerts import issues
from server.dose import drl, monitoring
from server.dose.facts import DoseFact
from server.fhir.errors import FhirError
from server.fhir.mapping import Context, device_label
from server.fhir.service import FhirService, body_of, device_names
from server.fhir.values import instant
from server.notify import routing
from server.store.port import Transaction

REVIEW_KINDS = {
    "duplicate-protocols": "Protocols of one device with the same parameters under different names",
    "across-devices": "Standard procedures whose medians differ between devices",
}
REVIEW_CODES = "https://kerma.example.org/fhir/CodeSystem/protocol-review"


def run(service: FhirService, ctx: Context, table: monitoring.Table, now: datetime) -> list[str]:
    """Raise what the facts up to `now` show; the DetectedIssues created (new ones only)."""
    end = now.timestamp()
    drift_since = now - timedelta(days=table.after_days)
    drift_from = drift_since - timedelta(days=table.before_days)
    rows = service.store.facts()
    recent = _between(rows, (now - timedelta(days=table.median_days)).timestamp(), end)
    medians = monitoring.medians_above(recent, _levels_of(ctx), table.min_values)
    before = _between(rows, drift_from.timestamp(), drift_since.timestamp())
    drifts = monitoring.drifts(before, _between(rows, drift_since.timestamp(), end), table)
    repeated = monitoring.repeated_examinations(rows, table.repeated, end)
    with service.store.transaction() as tx:
        where = _device_refs(tx)
        found = [
            issues.median_above(m, table.median_days, now, where(m.device), ctx) for m in medians
        ] + [issues.parameter_drift(d, drift_since, now, where(d.device), ctx) for d in drifts]
        found += [issues.repeated_examinations(r, now, ctx) for r in repeated]
        created = [
            f"DetectedIssue/{service.save_in(tx, 'DetectedIssue', issue, None).rid}"
            for issue in found
            if not service.all_in(
                tx, "DetectedIssue", [("identifier", issues.issue_identifier(issue))]
            )
        ]
        routing.queue(service, tx, created)
    return created


def protocol_review(
    service: FhirService, table: monitoring.Table, kind: str, days: int, now: datetime
) -> dict[str, Any]:
    """A List (snapshot, not stored) of duplicate protocols or device differences found in the
    facts of the last `days`; each entry names a device, its flag says what was found."""
    if kind not in REVIEW_KINDS:
        raise FhirError.of(400, "invalid", f"kind must be one of {', '.join(REVIEW_KINDS)}")
    if not 1 <= days <= 3660:
        raise FhirError.of(400, "invalid", "days must be between 1 and 3660")
    rows = _between(
        service.store.facts(), (now - timedelta(days=days)).timestamp(), now.timestamp()
    )
    label = device_names(service.store)
    entries = []
    if kind == "duplicate-protocols":
        for dup in monitoring.duplicate_protocols(rows, table):
            same = ", ".join(f"{k} {v}" for k, v in dup.signature if v not in (None, ""))
            names = " / ".join(repr(p) for p in dup.protocols)
            entries.append(_entry(dup.device, f"{names} on {label(dup.device)}: {same}"))
    else:
        for diff in monitoring.across_devices(rows, table):
            unit = f" {diff.tolerance.unit}" if diff.tolerance.unit else ""
            medians = "; ".join(
                f"{label(device)} {median:.4g}{unit} (n={n})" for device, median, n in diff.medians
            )
            text = f"{diff.procedure}, median {diff.tolerance.name}: {medians}"
            entries += [_entry(device, text) for device, _, _ in diff.medians]
    return {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": REVIEW_KINDS[kind],
        "code": {"coding": [{"system": REVIEW_CODES, "code": kind}]},
        "date": instant(now.timestamp()),
        "entry": entries,
    }


def _entry(device: str, text: str) -> dict[str, Any]:
    return {"item": {"reference": device}, "flag": {"text": text}}


def _levels_of(ctx: Context) -> Callable[[DoseFact], list[drl.DoseLevel]]:
    """The DRLs that apply to a facts row (by its standard procedure, age and weight)."""

    @functools.cache
    def code_of(name: str) -> str:
        procedure = ctx.rules.named(name)
        return procedure.code if procedure else ""

    def levels_of(row: DoseFact) -> list[drl.DoseLevel]:
        return ctx.applicable_levels(code_of(row.procedure or ""), row.age_years, row.weight_kg)

    return levels_of


def _device_refs(tx: Transaction) -> Callable[[str], issues.Refs]:
    """The implicated device of an issue about a device, with its routing tags."""

    @functools.cache
    def refs(device: str) -> issues.Refs:
        stored = tx.read(*device.split("/", 1))
        body = body_of(stored) if stored else {}
        modality = ((body.get("type") or {}).get("coding") or [{}])[0].get("code", "")
        department = (body.get("location") or {}).get("display", "")
        return issues.Refs(None, "", "", device, modality, department, device_label(body))

    return refs


def _between(rows: list[DoseFact], start: float, end: float) -> list[DoseFact]:
    """Rows dated in [start, end)."""
    return [r for r in rows if r.date is not None and start <= r.date < end]
