"""What an RQ worker process (`kerma worker`) runs: a Task by its id, with the store and
settings of the worker's environment (the same KERMA_* as `kerma serve`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from server.config import Settings
from server.fhir import FhirService
from server.jobs import tasks
from server.jobs.kinds import kinds
from server.logs import log_event
from server.site import build_service
from server.store import open_store

log = logging.getLogger("kerma.worker")


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


def work(settings: Settings, burst: bool = False) -> bool:
    """Run a worker on Kerma's queue (with RQ's scheduler for jobs enqueued for later)."""
    from redis import Redis

    from server.jobs.queue import QUEUE

    worker = _worker_class()([QUEUE], connection=Redis.from_url(settings.redis_url))
    log_event(log, "worker-started", name=worker.name, queue=QUEUE, redis=_address(settings),
              burst=burst)  # fmt: skip
    done = bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
    log_event(log, "worker-stopped", name=worker.name)
    return done


def _worker_class() -> type[Any]:
    from rq import Worker, worker_registration

    class KermaWorker(Worker):
        """RQ's worker, saying per job what it runs and how it ended, and registering again
        when Redis lost its registration (a restarted Redis keeps nothing): without that it
        works on, yet looks absent to /health/ready."""

        # RQ waits up to 60 s between tries while Redis is down (doubling from 1 s), so jobs
        # and the worker's registration came back up to a minute after Redis did; Redis is a
        # neighbour on the site's network, and a try every 5 s costs nothing
        max_connection_wait_time = 5.0

        def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
            super().heartbeat(timeout, pipeline)
            if pipeline is None and not self.connection.sismember(
                worker_registration.REDIS_WORKER_KEYS, self.key
            ):
                worker_registration.register(self)
                log_event(log, "worker-registered-again", name=self.name)

        def execute_job(self, job: Any, queue: Any) -> None:
            started = time.monotonic()
            log_event(log, "job-started", job=job.id, function=job.func_name.rpartition(".")[2])
            super().execute_job(job, queue)
            log_event(log, "job-ended", job=job.id, status=job.get_status(refresh=True),
                      seconds=round(time.monotonic() - started, 1))  # fmt: skip

    return KermaWorker


def _address(settings: Settings) -> str:
    parts = urlsplit(settings.redis_url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}"
