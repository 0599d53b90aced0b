"""FHIR failures as data: one exception type carrying the HTTP status and the issues.

The REST door turns a `FhirError` into an OperationOutcome with that status; GraphQL puts the
same OperationOutcome into the error's `extensions`. Nothing else may reach a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: `code` from the FHIR IssueType value set."""

    code: str
    diagnostics: str
    severity: Severity = "error"
    expression: str | None = None

    def as_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirError(Exception):
    def __init__(self, status: int, issues: list[Issue] | Issue) -> None:
        self.status = status
        self.issues = [issues] if isinstance(issues, Issue) else issues
        super().__init__("; ".join(i.diagnostics for i in self.issues))

    @classmethod
    def of(
        cls, status: int, code: str, diagnostics: str, expression: str | None = None
    ) -> FhirError:
        return cls(status, Issue(code, diagnostics, expression=expression))


def outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir() for i in issues]}
