"""What an RQ worker process (`kerma worker`) runs: a Task by its id, with the store and
settings of the worker's environment (the same KERMA_* as `kerma serve`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from server.config import Settings
from server.fhir import FhirService
from server.jobs import tasks
from server.jobs.kinds import kinds
from server.site import build_service
from server.store import open_store


@contextmanager
def _service() -> Iterator[tuple[FhirService, Settings]]:
    """A store per job: RQ runs each job in a forked process, which must not share the
    parent's database connections."""
    settings = Settings.from_env()
    store = open_store(settings)
    try:
        yield build_service(store, settings), settings
    finally:
        store.close()


def run_task(task_id: str) -> str:
    with _service() as (service, settings):
        return str(tasks.run(service, task_id, kinds(service, settings))["status"])


def task_died(job: Any, connection: Any, kind: type, value: BaseException, traceback: Any) -> None:
    """RQ's failure callback: the job ended without the Task saying so (killed, timed out)."""
    task_id = str(job.args[0])
    with _service() as (service, _):
        tasks.failed(service, task_id, f"the worker failed: {kind.__name__}: {value}")


def work(redis_url: str, burst: bool = False) -> bool:
    """Run a worker on Kerma's queue (with RQ's scheduler for jobs enqueued for later)."""
    from redis import Redis
    from rq import Worker

    from server.jobs.queue import QUEUE

    worker = Worker([QUEUE], connection=Redis.from_url(redis_url))
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
