"""Long work started over the API runs in the background and is followed as a FHIR Task:
in-progress with how far it got, then completed with its counts as outputs, or failed with
the reason. (In-process threads in the embedded default; RQ takes these over with issue 7.)"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.logs import log_event

log = logging.getLogger("kerma.jobs")
Work = Callable[[Callable[[int], None]], Counter[str]]  # gets a progress callback


def create(service: FhirService, code: str, description: str) -> dict[str, Any]:
    """The Task of work about to run (in-progress)."""
    now = instant(time.time())
    task = {
        "resourceType": "Task",
        "status": "in-progress",
        "intent": "order",
        "code": {"text": code},
        "description": description,
        "authoredOn": now,
        "lastModified": now,
    }
    return body_of(service.create_internal(task))


def start(service: FhirService, code: str, description: str, work: Work) -> dict[str, Any]:
    """Create the Task and run `work` in a thread; the Task as created."""
    task = create(service, code, description)
    threading.Thread(
        target=run, args=(service, task, work), name=f"kerma-task-{code}", daemon=True
    ).start()
    return task


def run(service: FhirService, task: dict[str, Any], work: Work) -> dict[str, Any]:
    """Run `work` now, recording progress and outcome on the Task; the final Task."""

    def progress(done: int) -> None:
        _update(service, task["id"], {"businessStatus": {"text": f"{done} done"}})

    try:
        counts = work(progress)
    except Exception as e:  # any failure ends on the Task, with its reason
        log_event(log, "task-failed", task=task["id"], error=type(e).__name__)
        return _update(
            service,
            task["id"],
            {"status": "failed", "statusReason": {"text": f"{type(e).__name__}: {e}"}},
        )
    outputs = [
        {"type": {"text": name}, "valueInteger": count} for name, count in sorted(counts.items())
    ]
    log_event(log, "task-completed", task=task["id"], **counts)
    return _update(service, task["id"], {"status": "completed", "output": outputs})


def _update(service: FhirService, rid: str, changes: dict[str, Any]) -> dict[str, Any]:
    current = body_of(service.read("Task", rid))
    body = {**current, **changes, "lastModified": instant(time.time())}
    return body_of(service.update("Task", rid, body).stored)
