"""Background work is followed as a FHIR Task, whichever runs it (an RQ worker or a thread):
`requested` when queued, `in-progress` while it runs (how far it got in businessStatus), then
`completed` with its counts and results as outputs, or `failed` with the reason. A failed Task
can be retried; the attempts so far are counted on it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from server.fhir.errors import FhirError
from server.fhir.service import FhirService, body_of
from server.fhir.values import instant
from server.logs import log_event

log = logging.getLogger("kerma.jobs")
ATTEMPTS_URL = "https://kerma.example.org/fhir/StructureDefinition/job-attempts"
ONCE_SYSTEM = "urn:kerma:job"
Progress = Callable[[int], None]
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
# a job kind: gets the Task's inputs and a progress callback, returns its outputs by name
# (counts as integers, results as references)
Work = Callable[[dict[str, str], Progress], Mapping[str, int | str]]


def create(
    service: FhirService, code: str, description: str, inputs: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Task of work to run (requested)."""
    return body_of(service.create_internal(_task(code, description, inputs)))


def create_once(
    service: FhirService, key: str, code: str, description: str, inputs: Mapping[str, str]
) -> tuple[dict[str, Any], bool]:
    """The Task of work done once (the daily run of a date): (the Task, whether it is new). In
    one transaction, so that two kerma serve processes make one Task."""
    task = {
        **_task(code, description, inputs),
        "identifier": [{"system": ONCE_SYSTEM, "value": key}],
    }
    with service.store.transaction() as tx:
        saved = service.create_in(tx, "Task", task, f"identifier={ONCE_SYSTEM}|{key}", trusted=True)
    return body_of(saved.stored), saved.created


def _task(code: str, description: str, inputs: Mapping[str, str] | None) -> dict[str, Any]:
    now = instant(time.time())
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"text": code},
        "description": description,
        "authoredOn": now,
        "lastModified": now,
    }
    if inputs:
        task["input"] = [
            {"type": {"text": name}, "valueString": value}
            for name, value in inputs.items()
            if value  # FHIR has no empty strings: an absent input is ""
        ]
    return task


def retry(service: FhirService, rid: str) -> dict[str, Any]:
    """A failed Task requested again (409 when it did not fail)."""
    task = body_of(service.read("Task", rid))
    if task.get("status") != "failed":
        raise FhirError.of(
            409, "conflict", f"Task/{rid} is {task.get('status')}; only a failed Task is retried"
        )
    return _update(service, rid, {"status": "requested"}, drop=("statusReason", "businessStatus"))


def run(service: FhirService, rid: str, kinds: Mapping[str, Work]) -> dict[str, Any]:
    """Run the Task's work now, recording progress and outcome on it; the final Task."""
    task = body_of(service.read("Task", rid))
    attempts = _attempts(task) + 1
    work = kinds.get(str(task.get("code", {}).get("text")))
    if work is None:
        return _failed(service, rid, attempts, f"no job kind {task.get('code', {}).get('text')!r}")
    _update(service, rid, {"status": "in-progress", "extension": _attempts_extension(attempts)})

    def progress(done: int) -> None:
        _update(service, rid, {"businessStatus": {"text": f"{done} done"}})

    inputs = inputs_of(task)
    inputs["task"] = rid  # where the work keeps what it makes (e.g. export files)
    try:
        outputs = work(inputs, progress)
    except Exception as e:  # any failure ends on the Task, with its reason
        return _failed(service, rid, attempts, f"{type(e).__name__}: {e}")
    log_event(log, "task-completed", task=rid, kind=task["code"]["text"])
    return _update(
        service, rid, {"status": "completed", "output": [_output(k, v) for k, v in outputs.items()]}
    )


def inputs_of(task: dict[str, Any]) -> dict[str, str]:
    """A Task's inputs by name."""
    return {str(i["type"]["text"]): str(i.get("valueString", "")) for i in task.get("input", [])}


def failed(service: FhirService, rid: str, reason: str) -> dict[str, Any]:
    """Record that the Task's run ended without it saying so (e.g. the worker process died)."""
    task = body_of(service.read("Task", rid))
    return _failed(service, rid, max(_attempts(task), 1), reason)


def _failed(service: FhirService, rid: str, attempts: int, reason: str) -> dict[str, Any]:
    log_event(log, "task-failed", task=rid, reason=reason)
    return _update(service, rid, {"status": "failed", "statusReason": {"text": reason},
                                  "extension": _attempts_extension(attempts)})  # fmt: skip


def _output(name: str, value: int | str) -> dict[str, Any]:
    """Counts as integers, references ("Type/id") as references, anything else as text."""
    if isinstance(value, int):
        return {"type": {"text": name}, "valueInteger": value}
    if _REFERENCE.match(value):
        return {"type": {"text": name}, "valueReference": {"reference": value}}
    return {"type": {"text": name}, "valueString": value}


def _attempts(task: dict[str, Any]) -> int:
    found = [e for e in task.get("extension", []) if e.get("url") == ATTEMPTS_URL]
    return int(found[0]["valueInteger"]) if found else 0


def _attempts_extension(attempts: int) -> list[dict[str, Any]]:
    return [{"url": ATTEMPTS_URL, "valueInteger": attempts}]


def _update(
    service: FhirService, rid: str, changes: dict[str, Any], drop: tuple[str, ...] = ()
) -> dict[str, Any]:
    current = body_of(service.read("Task", rid))
    kept = {k: v for k, v in current.items() if k not in drop}
    body = {**kept, **changes, "lastModified": instant(time.time())}
    return body_of(service.update("Task", rid, body).stored)
