"""Reviewing alerts: the work list of DetectedIssues and acknowledging one, for FHIR's
`$acknowledge` and the web console alike (one implementation of both)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.alerts.issues import COMMENT_URL, acknowledged
from server.fhir.errors import FhirError
from server.fhir.gate import Gate
from server.fhir.service import FhirService, body_of

SEVERITY_ORDER = {"high": 0, "moderate": 1, "low": 2}
_EVERY_ISSUE = 100_000


@dataclass(frozen=True)
class Handling:
    """One entry of an alert's history: who did what, when, and what they said."""

    who: str
    when: str
    action: str
    comment: str


@dataclass(frozen=True)
class Alert:
    """A DetectedIssue as people review it."""

    rid: str
    code: str
    title: str
    severity: str
    status: str  # preliminary: to review; final: acknowledged
    identified: str
    detail: str
    device: str  # "Device/<id>" or ""
    study: str  # "ImagingStudy/<id>" or ""
    patient: str  # "Patient/<id>" or ""
    evidence: tuple[str, ...]
    history: tuple[Handling, ...]

    @classmethod
    def of(cls, rid: str, issue: dict[str, Any]) -> Alert:
        implicated = [i.get("reference", "") for i in issue.get("implicated", [])]
        code = issue.get("code", {}).get("coding", [{}])[0]
        return cls(rid, code.get("code", ""), code.get("display", ""),
                   issue.get("severity", ""), issue.get("status", ""),
                   issue.get("identifiedDateTime", ""), issue.get("detail", ""),
                   _first(implicated, "Device/"), _first(implicated, "ImagingStudy/"),
                   issue.get("patient", {}).get("reference", ""),
                   tuple(c["text"] for e in issue.get("evidence", []) for c in e.get("code", [])
                         if "text" in c),
                   tuple(_handling(m) for m in issue.get("mitigation", [])))  # fmt: skip


def _first(references: list[str], prefix: str) -> str:
    return next((r for r in references if r.startswith(prefix)), "")


def _handling(entry: dict[str, Any]) -> Handling:
    comment = next((e.get("valueString", "") for e in entry.get("extension", [])
                    if e.get("url") == COMMENT_URL), "")  # fmt: skip
    action = entry.get("action", {}).get("coding", [{}])[0].get("display", "")
    return Handling(entry.get("author", {}).get("display", ""), entry.get("date", ""), action,
                    comment)  # fmt: skip


def work_list(
    service: FhirService,
    gate: Gate,
    status: str = "preliminary",
    severity: str = "",
    device: str = "",
    code: str = "",
    implicated: str = "",
) -> list[Alert]:
    """The alerts the user may see with this status (and severity, device, kind, what they
    implicate), most severe first and, within a severity, the oldest first."""
    wanted = (("status", status), ("severity", severity), ("device", device), ("code", code),
              ("implicated", implicated))  # fmt: skip
    pairs = [(name, value) for name, value in wanted if value]
    found = service.all_in(service.store, "DetectedIssue", pairs, gate=gate, limit=_EVERY_ISSUE)
    alerts = [Alert.of(s.rid, body_of(s)) for s in found]
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER.get(a.severity, 3), a.identified))


def acknowledge(
    service: FhirService, gate: Gate, rid: str, who: str, comment: str, when: datetime
) -> dict[str, Any]:
    """Mark an alert reviewed (status final) with who, when and the comment; 404 for no such
    alert, 403 when it is not about one of the user's devices."""
    with service.store.transaction() as tx:
        stored = tx.read("DetectedIssue", rid)
        if stored is None or stored.deleted:
            raise FhirError.of(404, "not-found", f"DetectedIssue/{rid} does not exist")
        if not gate.may_read(stored):
            raise FhirError.of(403, "forbidden", "the alert is not about a device you work on")
        done = acknowledged(body_of(stored), who, comment, when)
        saved = service.update_in(tx, "DetectedIssue", rid, done, trusted=True).stored
    return body_of(saved)
