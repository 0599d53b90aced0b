"""Background work as the console shows it: a Task's state, how far it got (a progress bar
when the total is known), its results or why it failed. The page refreshes itself while the
work runs (no script needed)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from server.fhir.service import FhirService, body_of
from server.jobs.tasks import inputs_of

REFRESH_S = 2
_DONE = re.compile(r"^(\d+) done$")


@dataclass(frozen=True)
class TaskView:
    id: str
    description: str
    status: str  # requested, in-progress, completed, failed
    done: int | None  # how many so far, when the work counts
    total: int | None  # how many in all, when known when it was asked for
    outputs: dict[str, str]  # counts and references by name
    reason: str  # why it failed

    @property
    def running(self) -> bool:
        return self.status in ("requested", "in-progress")


def task_view(service: FhirService, rid: str) -> TaskView:
    task = body_of(service.read("Task", rid))
    counted = _DONE.match(str(task.get("businessStatus", {}).get("text", "")))
    total = inputs_of(task).get("total", "")
    return TaskView(
        rid,
        str(task.get("description", "")),
        str(task.get("status", "")),
        int(counted.group(1)) if counted else None,
        int(total) if total.isdigit() else None,
        {str(o["type"]["text"]): _value(o) for o in task.get("output", [])},
        str(task.get("statusReason", {}).get("text", "")),
    )


def _value(output: dict[str, Any]) -> str:
    if "valueReference" in output:
        return str(output["valueReference"]["reference"])
    return str(next(v for k, v in output.items() if k.startswith("value")))
