"""Where background work runs: on RQ workers (`kerma worker`) when KERMA_REDIS_URL is set,
else in a thread of the process that asked for it. Either way the same job (run a Task by its
kind) and the same record of it (the Task)."""

from __future__ import annotations

import threading
import uuid
from typing import Protocol

from server.config import Settings
from server.fhir.service import FhirService
from server.jobs import tasks
from server.jobs.kinds import kinds

QUEUE = "kerma"
JOB_TIMEOUT_S = 6 * 3600  # a re-classification of years of studies
KEEP_S = 7 * 24 * 3600  # RQ's own record of a job; the Task is kept for good


class Jobs(Protocol):
    def submit(self, task_id: str) -> None:
        """Run the requested Task in the background."""


class ThreadJobs:
    """The embedded default: a thread per job in this process."""

    def __init__(self, service: FhirService, settings: Settings) -> None:
        self._service = service
        self._settings = settings

    def submit(self, task_id: str) -> None:
        work = kinds(self._service, self._settings)
        threading.Thread(
            target=tasks.run, args=(self._service, task_id, work), name="kerma-job", daemon=True
        ).start()


class RqJobs:
    """RQ on Redis: `kerma worker` processes run the jobs."""

    def __init__(self, redis_url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.queue = Queue(QUEUE, connection=Redis.from_url(redis_url))

    def submit(self, task_id: str) -> None:
        from rq import Callback

        self.queue.enqueue_call(
            "server.jobs.worker.run_task",
            args=(task_id,),
            job_id=f"task-{task_id}-{uuid.uuid4().hex[:8]}",  # one RQ job per attempt
            timeout=JOB_TIMEOUT_S,
            result_ttl=KEEP_S,
            failure_ttl=KEEP_S,
            on_failure=Callback("server.jobs.worker.task_died"),
        )


def jobs_for(service: FhirService, settings: Settings) -> Jobs:
    return RqJobs(settings.redis_url) if settings.redis_url else ThreadJobs(service, settings)
